package issue

import (
	"context"
	"encoding/json"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/pki"
)

// TestCRLNumberNeverGoesBackWhenEveryCRLIsLost: with the CA's crl.der and
// every bundle's copy gone, the next CRL, whichever command signs it,
// is numbered above the last one signed, which revoked.json keeps (RFC
// 5280 5.2.3: CRL numbers only grow).
func TestCRLNumberNeverGoesBackWhenEveryCRLIsLost(t *testing.T) {
	ctx := context.Background()
	template, _ := initTree(t, threeNodes)
	var last *big.Int
	for _, serial := range []string{"a1", "a2", "a3"} {
		res, err := RevokeSerials(ctx, pki.New(template), []pki.Revoked{{Serial: serial, Reason: "superseded", When: time.Now()}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		last = res.CRL.Number
	}
	if last.Int64() != 4 {
		t.Fatalf("CRL number %v after init and three revocations, want 4", last)
	}
	if got := historyOf(t, template.PKIDir).CRLNumber; got == nil || got.Cmp(last) != 0 {
		t.Fatalf("revoked.json keeps crlNumber %v, want %v", got, last)
	}
	signers := map[string]func(context.Context, *pki.Inventory) error{
		"rotate's upkeep (KeepCRL)": func(ctx context.Context, inv *pki.Inventory) error {
			_, err := KeepCRL(ctx, inv, time.Now(), false)
			return err
		},
		"ResignCRL": func(ctx context.Context, inv *pki.Inventory) error {
			_, err := ResignCRL(ctx, inv, nil, Options{})
			return err
		},
		"RevokeSerials": func(ctx context.Context, inv *pki.Inventory) error {
			_, err := RevokeSerials(ctx, inv, []pki.Revoked{{Serial: "b1", Reason: "superseded", When: time.Now()}}, Options{})
			return err
		},
		"init": func(ctx context.Context, inv *pki.Inventory) error {
			_, err := Init(ctx, inv, Options{})
			return err
		},
	}
	for name, sign := range signers {
		t.Run(name, func(t *testing.T) {
			s := spec(t, threeNodes, filepath.Join(t.TempDir(), "pki"))
			if out, err := exec.Command("cp", "-a", template.PKIDir, s.PKIDir).CombinedOutput(); err != nil {
				t.Fatalf("copy the PKI: %v: %s", err, out)
			}
			if lost := removeEveryCRL(t, s.PKIDir); lost < 4 {
				t.Fatalf("removed %d crl.der, want the CA's and three bundles' at least", lost)
			}
			if err := sign(ctx, pki.New(s)); err != nil {
				t.Fatal(err)
			}
			p := pki.Paths{PKI: s.PKIDir}
			crl, err := pki.LoadCRL(p)
			if err != nil || crl == nil {
				t.Fatalf("no CRL after %s: %v", name, err)
			}
			if crl.Number.Cmp(last) <= 0 {
				t.Errorf("CRL number %v, want above %v, the last one signed", crl.Number, last)
			}
			for _, serial := range []string{"a1", "a2", "a3"} {
				if !crl.Has(serial) {
					t.Errorf("the new CRL lost %s", serial)
				}
			}
			if got := historyOf(t, s.PKIDir).CRLNumber; got == nil || got.Cmp(crl.Number) != 0 {
				t.Errorf("revoked.json keeps crlNumber %v, want the new CRL's %v", got, crl.Number)
			}
			for _, n := range s.Nodes {
				l, err := pki.ParseCRL(mustReadFile(t, p.NodeCRL(n.Name)))
				if err != nil || l.Number.Cmp(crl.Number) != 0 {
					t.Errorf("%s's CRL: number %v, %v; want %v", n.Name, l.Number, err, crl.Number)
				}
			}
		})
	}
}

// TestRevokedJSONWithoutCRLNumberStillReads: a revoked.json written
// before it kept the CRL number (a bare list) is read, its entries kept,
// and the next CRL written keeps the number.
func TestRevokedJSONWithoutCRLNumberStillReads(t *testing.T) {
	ctx := context.Background()
	s, _ := initTree(t, threeNodes)
	res, err := RevokeSerials(ctx, pki.New(s), []pki.Revoked{{Name: "old", Serial: "c1", Reason: "keyCompromise", When: time.Now()}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pki.Paths{PKI: s.PKIDir}
	old, err := json.MarshalIndent(historyOf(t, s.PKIDir).Revoked, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// In place of the link: what an earlier etcdpki wrote.
	if err := os.Remove(p.Revoked()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Revoked(), append(old, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	crl, err := pki.LoadCRL(p)
	if err != nil {
		t.Fatalf("a revoked.json without crlNumber: %v", err)
	}
	if e, ok := crl.Entry("c1"); !ok || e.Name != "old" {
		t.Fatalf("entry %+v (found %v), want c1 named old", e, ok)
	}
	next, err := RevokeSerials(ctx, pki.New(s), []pki.Revoked{{Serial: "c2", Reason: "superseded", When: time.Now()}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if next.CRL.Number.Cmp(res.CRL.Number) <= 0 {
		t.Errorf("CRL number %v after %v", next.CRL.Number, res.CRL.Number)
	}
	h := historyOf(t, s.PKIDir)
	if h.CRLNumber == nil || h.CRLNumber.Cmp(next.CRL.Number) != 0 || len(h.Revoked) != 2 {
		t.Errorf("revoked.json %+v, want crlNumber %v and two entries", h, next.CRL.Number)
	}
}

// historyOf reads the CA's revoked.json.
func historyOf(t *testing.T, pkiDir string) pki.RevokedHistory {
	t.Helper()
	h, err := pki.ParseRevokedHistory(mustReadFile(t, pki.Paths{PKI: pkiDir}.Revoked()))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// removeEveryCRL removes every crl.der under pkiDir, links and the
// store versions they name alike, and counts them.
func removeEveryCRL(t *testing.T, pkiDir string) int {
	t.Helper()
	var gone []string
	err := filepath.WalkDir(pkiDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == pki.CRLFile {
			gone = append(gone, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range gone {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	return len(gone)
}
