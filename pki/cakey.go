package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// CAKeyDisagreement says how the spec's ca.key and the PKI's record of the
// CA key (PKI/etcd/ca.key.uri) disagree; "" when they agree, when the spec
// names no token key, or when the PKI has no CA yet.
//
// The record is the authority: every command that signs opens the CA
// key through PKI/etcd/ca.key.uri, not through the spec. It names the key
// that ca.crt was made with (and that a CA rotation relabels), it is what
// commands given --dir alone find, and a change of it goes through
// `etcdpki init`, which opens the token with the spec's URI and matches
// the key to ca.crt before recording it. A spec edited afterwards (a new
// pin-source, another token) would otherwise be ignored in silence, or
// would point signing at another key by a typo: so every writer refuses
// to run while the two disagree, and certs list warns.
func CAKeyDisagreement(inv *Inventory) (string, error) {
	want := inv.Spec.CA.Token
	if want == nil {
		return "", nil
	}
	dir := inv.Paths.CADir()
	uriPath := filepath.Join(dir, ca.KeyURIFile)
	data, err := atomicdir.Read(dir, ca.KeyURIFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, kerr := atomicdir.Read(dir, CAKeyFile); kerr == nil {
			return fmt.Sprintf("the spec %s puts the CA key in a token (%s) but this PKI's CA key is the file %s", specName(inv.Spec), want.Where(), inv.Paths.CAKey()), nil
		}
		return "", nil // no CA yet: init makes it where the spec says
	case err != nil:
		return "", ReadError(uriPath, err)
	}
	have, err := cluster.ParsePKCS11URI(strings.TrimSpace(string(data)), true)
	if err != nil {
		return "", fmt.Errorf("%s: %w", uriPath, err)
	}
	if have.String() == want.String() {
		return "", nil
	}
	if want.SameKey(have) {
		return fmt.Sprintf("the spec %s reaches the CA key through %s, %s through %s: run etcdpki init to record the spec's (it checks the key against ca.crt first), or put the recorded one back in the spec",
			specName(inv.Spec), want.String(), uriPath, have.String()), nil
	}
	return fmt.Sprintf("the spec %s says the CA key is %s, %s says %s: put the recorded one back in the spec (etcdpki ca rotate makes a new CA with its key where the spec says)",
		specName(inv.Spec), want.Where(), uriPath, have.Where()), nil
}

func specName(s *cluster.Spec) string {
	if s.File == "" {
		return "(made from flags)"
	}
	return s.File
}
