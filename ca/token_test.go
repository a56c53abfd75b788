//go:build cgo && !nopkcs11

package ca

import (
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
)

func tokenSpec(t *testing.T, tk *softhsm.Token, object string, key cluster.KeySpec) cluster.CA {
	t.Helper()
	u, err := cluster.ParsePKCS11URI(tk.URI(object), false)
	if err != nil {
		t.Fatal(err)
	}
	return cluster.CA{CommonName: "etcd-ca", Key: key, Validity: 24 * time.Hour, Token: u}
}

// Every signature is the token's: the CA has no key bytes, its key is a
// sensitive, non-extractable token object under the URI's label, and the
// CA reopened from its certificate and URI signs leaves that chain to it.
func TestTokenCASignsWithTheTokensKey(t *testing.T) {
	for _, key := range []cluster.KeySpec{p256, {Algorithm: cluster.AlgECDSA, Size: 384}, {Algorithm: cluster.AlgRSA, Size: 2048}} {
		t.Run(key.String(), func(t *testing.T) {
			tk := softhsm.New(t, "etcd")
			spec := tokenSpec(t, tk, "etcd-ca", key)
			a, err := Create(spec, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if a.KeyPEM != nil || !a.InToken() {
				t.Fatalf("a token CA holds key bytes (%d) or says it is not in a token", len(a.KeyPEM))
			}
			for _, f := range a.StoreFiles() {
				if f.Name != KeyURIFile || strings.Contains(string(f.Data), "PRIVATE") || strings.Contains(string(f.Data), tk.PIN) {
					t.Errorf("store file %s: %q", f.Name, f.Data)
				}
			}
			desc, err := DescribeTokenKey(a)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Label != "etcd-ca" || desc.Extractable || !desc.Sensitive {
				t.Errorf("token key = %+v, want label etcd-ca, not extractable, sensitive", desc)
			}
			re, err := ParseStore(a.CertPEM, nil, a.StoreFiles()[0].Data, "ca.crt", "ca.key", "ca.key.uri")
			if err != nil {
				t.Fatal(err)
			}
			certPEM, _, err := re.Sign(Request{Kind: KindClient, CommonName: "c", Key: p256, Validity: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := ParseCert(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Verify(leaf, x509.ExtKeyUsageClientAuth, time.Now()); err != nil {
				t.Errorf("leaf signed by the reopened token CA does not chain: %v", err)
			}
			if got := a.KeyWhere("x"); got != "pkcs11: token etcd, object etcd-ca" {
				t.Errorf("KeyWhere = %q", got)
			}
		})
	}
}

// A run killed after the key was generated and before ca.crt was written
// leaves a key in the token: the next Create uses it.
func TestTokenCreateReusesTheKeyAlreadyThere(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	spec := tokenSpec(t, tk, "etcd-ca", p256)
	first, err := Create(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	second, err := Create(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !publicEqual(first.Cert.PublicKey, second.Cert.PublicKey) {
		t.Error("second Create made a new key instead of using the one under the label")
	}
}

// Token trouble is one line naming the key, exit 1 (a failed operation);
// a PIN that cannot be read is bad input, exit 2.
func TestTokenFailures(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	a, err := Create(tokenSpec(t, tk, "etcd-ca", p256), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	badPIN := t.TempDir() + "/pin"
	if err := os.WriteFile(badPIN, []byte("0000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openPIN := t.TempDir() + "/pin"
	if err := os.WriteFile(openPIN, []byte(tk.PIN), 0o644); err != nil {
		t.Fatal(err)
	}
	uri := func(s string) []byte { return []byte(s) }
	cases := []struct {
		name, uri, want string
		exit            int
	}{
		{"wrong PIN", strings.Replace(tk.URI("etcd-ca"), tk.PINFile, badPIN, 1), "CA key pkcs11: token etcd, object etcd-ca: wrong PIN (pin-source " + badPIN + ")", 1},
		{"token absent", strings.Replace(tk.URI("etcd-ca"), "token=etcd", "token=other", 1), "CA key pkcs11: token other, object etcd-ca: no such token in module " + tk.Module + " (is it plugged in and initialised?)", 1},
		{"module not loadable", strings.Replace(tk.URI("etcd-ca"), tk.Module, "/nonexistent/lib.so", 1), "CA key pkcs11: token etcd, object etcd-ca: PKCS#11 module /nonexistent/lib.so cannot be loaded: no such file or directory", 1},
		{"PIN file readable by others", strings.Replace(tk.URI("etcd-ca"), tk.PINFile, openPIN, 1), "pin-source " + openPIN + ": mode 0644 lets others read the PIN (chmod 0600 or 0400)", 2},
		{"no key for the certificate", tk.URI("other-label"), "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseStore(a.CertPEM, nil, uri(c.uri), "ca.crt", "ca.key", "ca.key.uri")
			if c.want == "" {
				// Found by its public key under another label: what a
				// run killed between two relabels needs.
				if err != nil {
					t.Fatalf("the CA key under another label was not found: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("opened")
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %q\nwant %q", err, c.want)
			}
			got := 1
			var coder input.Coder
			if errors.As(err, &coder) {
				got = coder.ExitCode()
			}
			if got != c.exit {
				t.Errorf("exit code %d, want %d", got, c.exit)
			}
		})
	}
}

// A CA rotation's next key is made under its own label; the old key is
// retired by relabelling (never deleted) and the new one takes the
// spec's label once in effect, each step idempotent.
func TestNextCARelabels(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	spec := tokenSpec(t, tk, "etcd-ca", p256)
	old, err := Create(spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	next, err := CreateNext(spec, old, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if publicEqual(old.Cert.PublicKey, next.Cert.PublicKey) {
		t.Fatal("the next CA reused the old key")
	}
	if again, err := CreateNext(spec, old, time.Now()); err != nil || !publicEqual(again.Cert.PublicKey, next.Cert.PublicKey) {
		t.Fatalf("a second CreateNext made another key (%v)", err)
	}
	var retired, current *CA
	for range 2 {
		if retired, err = Retire(old); err != nil {
			t.Fatal(err)
		}
		current = InEffect(next)
		if err := Settle(current); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		a    *CA
		want string
	}{{retired, RetiredLabel("etcd-ca", old.Cert.SerialNumber.Text(16))}, {current, "etcd-ca"}} {
		if c.a.Token.Object != c.want {
			t.Errorf("URI names %q, want %q", c.a.Token.Object, c.want)
		}
		d, err := DescribeTokenKey(c.a)
		if err != nil {
			t.Fatal(err)
		}
		if d.Label != c.want || d.Extractable {
			t.Errorf("key = %+v, want label %q", d, c.want)
		}
	}
	// The next rotation makes a new key again, the current one untouched.
	third, err := CreateNext(spec, current, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if publicEqual(third.Cert.PublicKey, current.Cert.PublicKey) || publicEqual(third.Cert.PublicKey, old.Cert.PublicKey) {
		t.Error("the third CA reused a key")
	}
}

// BenchmarkSignLeaf is one leaf certificate (a new P-256 key, signed,
// verified) from a CA whose key is a file, and from one in a SoftHSM2
// token: the token opens a session, logs in and signs for each.
func BenchmarkSignLeaf(b *testing.B) {
	for _, home := range []string{"file", "token"} {
		b.Run(home, func(b *testing.B) {
			spec := cluster.CA{CommonName: "etcd-ca", Key: p256, Validity: 24 * time.Hour}
			if home == "token" {
				u, err := cluster.ParsePKCS11URI(softhsm.New(b, "etcd").URI("etcd-ca"), false)
				if err != nil {
					b.Fatal(err)
				}
				spec.Token = u
			}
			a, err := Create(spec, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := a.Sign(Request{Kind: KindClient, CommonName: "c", Key: p256, Validity: time.Hour}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
