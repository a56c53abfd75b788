//go:build cgo && !nopkcs11

package issue

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
	"github.com/etcdpki/etcdpki/pki"
)

// caKeyHome is one place the CA key can live; every CA test below runs
// for each.
type caKeyHome struct {
	name string
	// yaml is the spec's ca section for it (a fresh token per test for
	// the token).
	yaml    func(t *testing.T) string
	inToken bool
}

var caKeyHomes = []caKeyHome{
	{name: "file", yaml: func(*testing.T) string { return "" }},
	{name: "token", inToken: true, yaml: func(t *testing.T) string {
		return "ca:\n  key: " + softhsm.New(t, "etcd").URI("etcd-ca") + "\n"
	}},
}

// checkCAKeyHome is the done-when check: every leaf chains to ca.crt for
// each usage it claims; the only file under the PKI holding the CA's
// private key is PKI/etcd/ca.key for a file key, and there is none for a
// token key, whose token holds it under the spec's label, sensitive and
// not extractable.
func checkCAKeyHome(t *testing.T, s *cluster.Spec, inToken bool) {
	t.Helper()
	p := pki.Paths{PKI: s.PKIDir}
	caCert := readCert(t, p.CACert())
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	for _, tg := range pki.New(s).Targets {
		leaf := readCert(t, tg.CertPath())
		for _, u := range tg.Kind.Usages {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
				t.Errorf("%s does not chain to ca.crt for %v: %v", tg.ID, u, err)
			}
		}
	}
	var holders []string
	filepath.WalkDir(s.PKIDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if !strings.Contains(b.Type, "PRIVATE KEY") {
				continue
			}
			key, err := certx.ParseKey(pem.EncodeToMemory(b))
			if err == nil && certx.KeyMatches(caCert, key.Public()) {
				holders = append(holders, path)
			}
		}
		return nil
	})
	authority, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	if !inToken {
		if len(holders) != 1 || filepath.Base(holders[0]) != "ca.key" || !strings.HasPrefix(holders[0], p.CADir()) {
			t.Errorf("files holding the CA key: %v, want PKI/etcd's ca.key only", holders)
		}
		return
	}
	if len(holders) != 0 {
		t.Errorf("the CA key is in the token, yet these files hold it: %v", holders)
	}
	if _, err := os.Lstat(p.CAKey()); !os.IsNotExist(err) {
		t.Errorf("%s exists with the key in a token (%v)", p.CAKey(), err)
	}
	d, err := ca.DescribeTokenKey(authority)
	if err != nil {
		t.Fatal(err)
	}
	if d.Label != s.CA.Token.Object || d.Extractable || !d.Sensitive {
		t.Errorf("token key %+v: want label %q, not extractable, sensitive", d, s.CA.Token.Object)
	}
}

// TestCAKeyHomes runs init, certs list and certs renew --all for a CA key
// in a file and in a token.
func TestCAKeyHomes(t *testing.T) {
	ctx := context.Background()
	for _, h := range caKeyHomes {
		t.Run(h.name, func(t *testing.T) {
			s := spec(t, h.yaml(t)+threeNodes, filepath.Join(t.TempDir(), "pki"))
			if _, err := Init(ctx, pki.New(s), Options{}); err != nil {
				t.Fatal(err)
			}
			checkCAKeyHome(t, s, h.inToken)

			infos, err := pki.List(pki.New(s), 0, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := "file " + pki.Paths{PKI: s.PKIDir}.CAKey()
			if h.inToken {
				want = "pkcs11: token etcd, object etcd-ca"
			}
			if infos[0].Name != "etcd-ca" || infos[0].Key != want {
				t.Errorf("certs list: CA row %s says key %q, want %q", infos[0].Name, infos[0].Key, want)
			}

			// Running init again reuses the CA (and the token key) and
			// changes no byte.
			before := snapshot(t, s.PKIDir)
			if _, err := Init(ctx, pki.New(s), Options{}); err != nil {
				t.Fatal(err)
			}
			if snapshot(t, s.PKIDir) != before {
				t.Error("a second init changed the tree")
			}

			old := map[string][]byte{}
			for _, tg := range pki.New(s).Targets {
				old[tg.ID] = mustRead(t, tg.CertPath())
			}
			got, err := Renew(ctx, pki.New(s), pki.New(s).Targets, RenewOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(old) {
				t.Fatalf("renewed %d of %d", len(got), len(old))
			}
			for id, o := range old {
				tg, _ := pki.Select(pki.New(s).Targets, []string{id})
				if bytes.Equal(o, mustRead(t, tg[0].CertPath())) {
					t.Errorf("%s not renewed", id)
				}
			}
			checkCAKeyHome(t, s, h.inToken)
		})
	}
}

// TestInitTokenCrashAtEveryStepConverges kills a first init with the CA
// key in a token at each filesystem step, from the first, which comes
// after the key was made in the token and long before ca.crt exists,
// until the CA's store (ca.crt, ca.key.uri) is in effect: the re-run
// finishes with the key already in the token and makes no other.
func TestInitTokenCrashAtEveryStepConverges(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	steps, caWhole := 0, false
	for n := 1; ; n++ {
		// A token per attempt: each one's key is made by its own first
		// run.
		yaml := "ca:\n  key: " + softhsm.New(t, "etcd").URI("etcd-ca") + "\n" + threeNodes
		s := spec(t, yaml, filepath.Join(ramdir.TempDir(t), "pki"))
		stopped := crashpoint.RunUntilStep(t, n, func() error { _, err := Init(ctx, pki.New(s), Options{}); return err })
		if stopped == "" {
			break
		}
		steps++
		p := pki.Paths{PKI: s.PKIDir}
		_, certErr := os.Stat(p.CACert())
		_, uriErr := os.Stat(filepath.Join(p.CADir(), ca.KeyURIFile))
		caWhole = certErr == nil && uriErr == nil
		keyBefore := tokenKeys(t, s)
		if _, err := Init(ctx, pki.New(s), Options{}); err != nil {
			t.Fatalf("killed at step %s; init again: %v", stopped, err)
		}
		checkConverged(t, s, stopped)
		checkCAKeyHome(t, s, true)
		authority, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
		if err != nil {
			t.Fatal(err)
		}
		if keyBefore == nil || !certx.KeyMatches(authority.Cert, keyBefore) {
			t.Errorf("killed at step %s: the re-run's CA is not the key the killed run made in the token", stopped)
		}
		if t.Failed() || caWhole {
			// From here on init's steps are the leaves' and configs',
			// the same as with a file key, which
			// TestInitCrashAtEveryStepConverges kills at each.
			break
		}
	}
	if steps < 20 || !caWhole {
		t.Fatalf("only %d steps: the hook does not see init's writes", steps)
	}
	t.Logf("init of 3 nodes with the CA key in a token: killed at each of the %d steps up to the CA store in effect, every re-run converged on the token's key", steps)
}

// tokenKeys is the public key of the CA key under the spec's label, read
// from the token without any file (nil when there is none).
func tokenKeys(t *testing.T, s *cluster.Spec) crypto.PublicKey {
	t.Helper()
	pub, err := ca.TokenPublicKey(s.CA.Token)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestReissueReplacesAnExpiredTokenCA: the recovery from an expired CA
// whose key is in a token makes the new CA's key in the same token, gives
// the old key its retired label (the backup names it so; nothing is
// deleted) and the new key the spec's label.
func TestReissueReplacesAnExpiredTokenCA(t *testing.T) {
	key := "ca:\n  key: " + softhsm.New(t, "etcd").URI("etcd-ca") + "\n"
	short := strings.Replace(threeNodes, "certs:\n  validity: 365d", "certs:\n  validity: 2s\n  renewBefore: 1s", 1)
	s := spec(t, strings.Replace(key, "ca:\n", "ca:\n  validity: 2s\n", 1)+short, filepath.Join(t.TempDir(), "pki"))
	if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
		t.Fatal(err)
	}
	old, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // past both: certificates store whole seconds
	s = spec(t, key+threeNodes, s.PKIDir)
	out, err := Reissue(context.Background(), pki.New(s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out.NewCA == nil || certx.KeyMatches(out.NewCA.Cert, old.Cert.PublicKey) {
		t.Fatal("no new CA, or one with the expired CA's key")
	}
	checkConverged(t, s, "none")
	checkCAKeyHome(t, s, true)
	uris, err := filepath.Glob(filepath.Join(pki.Paths{PKI: s.PKIDir}.Backups(), "*", "etcd", ca.KeyURIFile))
	if err != nil || len(uris) != 1 {
		t.Fatalf("backup of the old CA's key URI: %v %v", uris, err)
	}
	retired, err := ca.ParseStore(mustRead(t, filepath.Join(filepath.Dir(uris[0]), "ca.crt")), nil, mustRead(t, uris[0]), "ca.crt", "", uris[0])
	if err != nil {
		t.Fatal(err)
	}
	d, err := ca.DescribeTokenKey(retired)
	if err != nil {
		t.Fatal(err)
	}
	if want := ca.RetiredLabel("etcd-ca", old.Cert.SerialNumber.Text(16)); d.Label != want || retired.Token.Object != want || !retired.Cert.Equal(old.Cert) {
		t.Errorf("retired key labelled %q, backup names %q; want %q for the old CA", d.Label, retired.Token.Object, want)
	}
	out, err = Reissue(context.Background(), pki.New(s), Options{})
	if err != nil || out.NewCA != nil || len(out.Renewed) != 0 {
		t.Errorf("second Reissue: %v, new CA %v, %d renewed; want nothing", err, out.NewCA != nil, len(out.Renewed))
	}
}
