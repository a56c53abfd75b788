package issue

import (
	"bytes"
	"context"
	"slices"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// Adoption is what adopt takes under management: the cluster's own CA,
// the pairs the operator had copies of, and the certificates seen in
// use on the hosts without their keys. Every byte comes from the running
// cluster or the operator's files; nothing is signed.
type Adoption struct {
	CA *ca.CA
	// Pairs are imported as they are, by target ID: the same files, so
	// the same serials.
	Pairs map[string]pki.Pair
	// Held are certificates (PEM) in use on their hosts, by target ID,
	// recorded without a key (see pki.InspectHeld).
	Held map[string][]byte
}

// Adopt writes an adoption into the PKI directory as init would have laid
// it out: the CA, every bundle's ca.crt, the imported pairs, the held
// records and the configuration files. A PKI directory holding another
// CA is refused; one holding this CA (adopt run again) is brought up to
// date. Like Init it writes one batch under the lock: a failure takes
// back everything it wrote.
func Adopt(ctx context.Context, inv *pki.Inventory, a Adoption, o Options) (*Result, error) {
	s, p := inv.Spec, inv.Paths
	if err := CheckAdoptable(inv, a.CA); err != nil {
		return nil, err
	}
	fr, held, err := lockNewPKIDir(s.PKIDir, o)
	if err != nil {
		return nil, err
	}
	defer held.Release()
	fail := fr.fail
	// Again under the lock: another command may have written meanwhile.
	if err := checkAdoptCA(p, a.CA); err != nil {
		return fail(err)
	}
	if err := refuseDuringCARotation(p, "adopt"); err != nil {
		return fail(err)
	}
	pl := &plan{byDir: map[string]*pending{}}
	res := &Result{}
	pl.add(p.CAStore(), atomicdir.File{Name: pki.CAFile, Data: a.CA.CertPEM, Mode: atomicdir.CertMode})
	pl.add(p.CAStore(), atomicdir.File{Name: pki.CAKeyFile, Data: a.CA.KeyPEM, Mode: atomicdir.CAKeyMode})
	// The CRL with the configs that name it: a member restarted from its
	// etcd.env before the first rotate must find it. Signed by the
	// adopted CA (one another tool made may lack cRLSign; SignCRL copes).
	crl, err := initCRL(inv, a.CA, o.now())
	if err != nil {
		return fail(err)
	}
	pl.addCRL(p, s, crl)
	for _, t := range inv.Targets {
		pl.add(t.CAStore(), atomicdir.File{Name: pki.CAFile, Data: a.CA.CertPEM, Mode: atomicdir.CertMode})
		if pair, ok := a.Pairs[t.ID]; ok {
			if existing, _, err := pki.ReadTargetPair(t); err == nil && existing != nil && !bytes.Equal(existing, pair.Cert) {
				// Adopt run again after a renewal: the copy is older than
				// what the PKI issued since; never go back to it.
				o.printf("[keep] %s: the PKI already holds another certificate for it; the copy is not imported", t.ID)
				continue
			}
			pl.add(t.Store(), atomicdir.File{Name: t.CertName, Data: pair.Cert, Mode: atomicdir.CertMode})
			pl.add(t.Store(), atomicdir.File{Name: t.KeyName, Data: pair.Key, Mode: atomicdir.KeyMode})
			res.Reused = append(res.Reused, t.ID)
			continue
		}
		if certPEM, ok := a.Held[t.ID]; ok {
			if existing, _, err := pki.ReadTargetPair(t); err == nil && existing != nil {
				// Adopt run again after a renewal: the pair etcdpki
				// issued is the one in effect, not what was held.
				continue
			}
			pl.configs = append(pl.configs, atomicdir.File{Name: t.Held, Data: certPEM, Mode: atomicdir.CertMode})
		}
	}
	if err := planConfigs(inv, pl, o); err != nil {
		return fail(err)
	}
	pl.dirs = append(inv.OwnedDirs(), p.HeldDir())
	if err := checkWritable(s.PKIDir, pl); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := fr.commit(pl, res); err != nil {
		return nil, err
	}
	slices.Sort(res.Reused)
	return res, nil
}

// CheckAdoptable refuses, before adopt looks at the cluster, a PKI
// directory it could not write the adoption into: not a directory,
// holding another CA, or in the middle of a CA rotation.
func CheckAdoptable(inv *pki.Inventory, a *ca.CA) error {
	if err := checkPKIDir(inv.Spec.PKIDir); err != nil {
		return err
	}
	if err := checkAdoptCA(inv.Paths, a); err != nil {
		return err
	}
	return refuseDuringCARotation(inv.Paths, "adopt")
}

// checkAdoptCA refuses a PKI directory that already has a CA other than
// the one being adopted: its bundles would mix two CAs.
func checkAdoptCA(p pki.Paths, a *ca.CA) error {
	have, err := pki.LoadCAIfAny(p)
	if err != nil {
		return err
	}
	if have != nil && !have.Cert.Equal(a.Cert) {
		return input.Errorf("%s: the PKI directory already holds another CA (%q, serial %s); adopt into an empty directory",
			p.CACert(), have.Cert.Subject.CommonName, pki.ShortSerial(have.Cert.SerialNumber.Text(16)))
	}
	return nil
}
