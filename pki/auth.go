package pki

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// AuthDefaultFile records, in the PKI directory, that init made this PKI
// with etcd's auth on by default: a spec that leaves auth.enabled unset
// then means on for every later command, as it did for init. A PKI
// without it (every PKI made before auth existed) means off.
const AuthDefaultFile = "auth-default"

// AuthDefaultOn is the file's only content.
const AuthDefaultOn = "on\n"

// RootDir is where etcdpki issue root writes the break-glass root
// client pair (and the CA beside it, for etcdctl): inside the PKI
// directory, never a bundle's.
func (p Paths) RootDir() string { return filepath.Join(p.PKI, "root") }

// AuthDefault is the file's path.
func (p Paths) AuthDefault() string { return filepath.Join(p.PKI, AuthDefaultFile) }

// ApplyAuthDefault fills in s.Auth.Enabled from the PKI's recorded
// default when the spec leaves it unset; an explicit enabled: true or
// false always wins. A default file that is not a small regular file
// holding "on" is bad input naming it.
func ApplyAuthDefault(s *cluster.Spec) error {
	if s.Auth.Set {
		return nil
	}
	path := Paths{PKI: s.PKIDir}.AuthDefault()
	data, err := regular.ReadFile(path, 64)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case string(data) != AuthDefaultOn:
		return input.Errorf("%s: holds %q, want %q (init writes it; delete it to leave auth's default off)", path, strings.TrimSpace(string(data)), strings.TrimSpace(AuthDefaultOn))
	}
	s.Auth.Enabled = true
	return nil
}
