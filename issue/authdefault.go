package issue

import (
	"fmt"
	"io/fs"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// authDefaultMode: the file says only that auth defaults on; readable
// like the configs beside it.
const authDefaultMode fs.FileMode = 0o644

// writeAuthDefault records that this PKI defaults to etcd's auth on (see
// pki.AuthDefaultFile) when the spec leaves auth.enabled unset and init
// resolved it to on (a new PKI). It is written after every check and
// before the CA, so a run killed in between and run again still finds
// the PKI new-with-auth-on rather than an existing PKI with auth off.
func writeAuthDefault(inv *pki.Inventory) error {
	s := inv.Spec
	if s.Auth.Set || !s.Auth.Enabled {
		return nil
	}
	path := inv.Paths.AuthDefault()
	if _, err := atomicdir.WriteFile(path, []byte(pki.AuthDefaultOn), authDefaultMode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
