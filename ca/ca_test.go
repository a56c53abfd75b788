package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cferr "github.com/cloudflare/cfssl/errors"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
)

var p256 = cluster.KeySpec{Algorithm: cluster.AlgECDSA, Size: 256}

func newCA(t *testing.T, validity time.Duration) *CA {
	t.Helper()
	a, err := Create(cluster.CA{CommonName: "etcd-ca", Key: p256, Validity: validity}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Catalogue() {
		if seen[k.Name] {
			t.Errorf("duplicate kind %q", k.Name)
		}
		seen[k.Name] = true
		if _, ok := kinds[k.Profile]; !ok {
			t.Errorf("%s: profile %q has no signing policy", k.Name, k.Profile)
		}
		if len(k.Usages) == 0 || k.LongName == "" {
			t.Errorf("%s: incomplete entry", k.Name)
		}
		if k.ServerSANs != (k.Usages[0] == x509.ExtKeyUsageServerAuth) {
			t.Errorf("%s: server certificates and only they carry SANs", k.Name)
		}
	}
}

func TestSignEveryKind(t *testing.T) {
	a := newCA(t, 24*time.Hour*365)
	for _, k := range Catalogue() {
		var hosts []string
		if k.ServerSANs {
			hosts = []string{"10.0.0.1", "node.example"}
		}
		certPEM, keyPEM, err := a.Sign(Request{Kind: k, CommonName: "x", Hosts: hosts, Key: p256, Validity: time.Hour})
		if err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		if err := CheckPair(certPEM, keyPEM); err != nil {
			t.Errorf("%s: %v", k.Name, err)
		}
		c, _ := ParseCert(certPEM)
		for _, u := range k.Usages {
			if err := a.Verify(c, u, time.Now()); err != nil {
				t.Errorf("%s: usage %v: %v", k.Name, u, err)
			}
		}
		if !k.ServerSANs {
			if err := a.Verify(c, x509.ExtKeyUsageServerAuth, time.Now()); err == nil {
				t.Errorf("%s: a client certificate verifies as a server", k.Name)
			}
			if len(c.DNSNames)+len(c.IPAddresses) != 0 {
				t.Errorf("%s: client certificate has SANs", k.Name)
			}
		}
	}
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	a := newCA(t, 48*time.Hour)
	certPEM, _, err := a.Sign(Request{Kind: KindPeer, CommonName: "n", Hosts: []string{"10.0.0.1"}, Key: p256, Validity: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseCert(certPEM)
	if c.NotAfter.After(a.Cert.NotAfter) {
		t.Errorf("leaf notAfter %v is after CA's %v", c.NotAfter, a.Cert.NotAfter)
	}
	if c.NotBefore.Before(a.Cert.NotBefore) {
		t.Errorf("leaf notBefore %v is before CA's %v", c.NotBefore, a.Cert.NotBefore)
	}
}

func TestReuseKey(t *testing.T) {
	a := newCA(t, 24*time.Hour)
	_, key, _ := a.Sign(Request{Kind: KindAPIServer, CommonName: "c", Key: p256, Validity: time.Hour})
	cert2, key2, err := a.Sign(Request{Kind: KindAPIServer, CommonName: "c", Key: p256, Validity: time.Hour, ReuseKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if string(key2) != string(key) || CheckPair(cert2, key) != nil {
		t.Error("reused key not used")
	}
}

func TestParseRejects(t *testing.T) {
	a := newCA(t, 24*time.Hour)
	b := newCA(t, 24*time.Hour)
	leaf, leafKey, _ := a.Sign(Request{Kind: KindServer, CommonName: "n", Hosts: []string{"10.0.0.1"}, Key: p256, Validity: time.Hour})
	for name, tc := range map[string]struct {
		cert, key []byte
		want      string
	}{
		"leaf as CA":     {leaf, leafKey, `certificate "n" is not a CA`},
		"other CA's key": {a.CertPEM, b.KeyPEM, "CA key does not match"},
		"garbage cert":   {[]byte("x"), a.KeyPEM, "no PEM certificate found"},
		"garbage key":    {a.CertPEM, []byte("x"), "CA key"},
	} {
		_, err := Parse(tc.cert, tc.key, "ca.crt")
		var ie *input.Error
		if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ca.crt: ") {
			t.Errorf("%s: err = %v, want input error containing %q", name, err, tc.want)
		}
	}
}

func TestUnsupportedKeys(t *testing.T) {
	a := newCA(t, 24*time.Hour)
	for _, k := range []cluster.KeySpec{{Algorithm: "rsa", Size: 1024}, {Algorithm: "ecdsa", Size: 521}, {Algorithm: "ed25519"}} {
		if _, _, err := a.Sign(Request{Kind: KindClient, CommonName: "c", Key: k, Validity: time.Hour}); err == nil {
			t.Errorf("key %s accepted", k)
		}
	}
	for _, k := range []cluster.KeySpec{{Algorithm: "rsa", Size: 2048}, {Algorithm: "ecdsa", Size: 384}} {
		c, _, err := a.Sign(Request{Kind: KindClient, CommonName: "c", Key: k, Validity: time.Hour})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		cert, _ := ParseCert(c)
		if certx.KeyDescription(cert.PublicKey) != k.String() {
			t.Errorf("got %s want %s", certx.KeyDescription(cert.PublicKey), k)
		}
	}
}

// Validity counts from now, not from the back-dated notBefore, for the CA
// and for leaves: a validity shorter than the back-dating used to give a
// certificate that was expired when issued.
func TestValidityCountsFromNow(t *testing.T) {
	now := time.Now()
	a, err := Create(cluster.CA{CommonName: "etcd-ca", Key: p256, Validity: 48 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(48 * time.Hour).Truncate(time.Second); !a.Cert.NotAfter.Equal(want) {
		t.Errorf("CA notAfter %v, want now+48h = %v", a.Cert.NotAfter, want)
	}
	if want := now.Add(-Backdate).Truncate(time.Second); !a.Cert.NotBefore.Equal(want) {
		t.Errorf("CA notBefore %v, want now-%v = %v", a.Cert.NotBefore, Backdate, want)
	}
	for _, v := range []time.Duration{2 * time.Second, time.Minute, time.Hour} {
		certPEM, _, err := a.Sign(Request{Kind: KindClient, CommonName: "c", Key: p256, Validity: v, Now: now})
		if err != nil {
			t.Fatalf("validity %v: %v", v, err)
		}
		c, _ := ParseCert(certPEM)
		if want := now.Add(v).Truncate(time.Second); !c.NotAfter.Equal(want) {
			t.Errorf("validity %v: notAfter %v, want %v", v, c.NotAfter, want)
		}
		if err := a.Verify(c, x509.ExtKeyUsageClientAuth, now); err != nil {
			t.Errorf("validity %v: not valid when issued: %v", v, err)
		}
	}
}

// Only a validity that leaves nothing usable is refused, as an input
// error: zero, negative, under a second, or a CA with no life left.
func TestSignRefusesUnusableValidity(t *testing.T) {
	a := newCA(t, time.Hour)
	for _, v := range []time.Duration{0, -time.Hour, 500 * time.Millisecond} {
		_, _, err := a.Sign(Request{Kind: KindClient, CommonName: "c", Key: p256, Validity: v})
		var ie *input.Error
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "shorter than a second") {
			t.Errorf("validity %v: err = %v, want an input error", v, err)
		}
	}
	_, _, err := a.Sign(Request{Kind: KindClient, CommonName: "c", Key: p256, Validity: time.Minute, Now: a.Cert.NotAfter.Add(time.Second)})
	var ie *input.Error
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired CA: err = %v, want an input error saying it expired", err)
	}
	for name, r := range map[string]Request{
		"non-ascii SAN": {Kind: KindServer, CommonName: "n", Hosts: []string{"bücher.example"}},
		"e-mail SAN":    {Kind: KindServer, CommonName: "n", Hosts: []string{"a@b.example"}},
		"URL SAN":       {Kind: KindServer, CommonName: "n", Hosts: []string{"https://a.example"}},
		"newline in CN": {Kind: KindClient, CommonName: "a\nb"},
		"long CN":       {Kind: KindClient, CommonName: strings.Repeat("x", 65)},
		"bad org":       {Kind: KindClient, CommonName: "c", Organization: []string{""}},
	} {
		r.Key, r.Validity = p256, time.Hour
		_, _, err := a.Sign(r)
		if !errors.As(err, &ie) {
			t.Errorf("%s: err = %v, want an input error", name, err)
		}
	}
}

// A corrupt key is reported against the key file, in words: cfssl's
// errors are JSON documents.
func TestParseFilesNamesTheFile(t *testing.T) {
	a := newCA(t, time.Hour)
	for name, key := range map[string][]byte{
		"garbage":   []byte("x"),
		"bad DER":   []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"),
		"truncated": a.KeyPEM[:len(a.KeyPEM)/2],
	} {
		_, err := ParseFiles(a.CertPEM, key, "pki/etcd/ca.crt", "pki/etcd/ca.key")
		if err == nil || !strings.HasPrefix(err.Error(), "pki/etcd/ca.key: ") || strings.ContainsAny(err.Error(), "{}\n") {
			t.Errorf("%s: err = %v, want one line against ca.key without JSON", name, err)
		}
	}
}

// The names the spec and `issue` refuse include every catalogue kind and
// its file name, so `certs renew KIND` can never also mean a client.
func TestCatalogueNamesReserved(t *testing.T) {
	for _, k := range Catalogue() {
		for _, n := range []string{k.Name, k.BaseName} {
			if n != "" && !slices.Contains(cluster.ReservedNames, n) {
				t.Errorf("catalogue name %q is not in cluster.ReservedNames", n)
			}
		}
	}
	if !slices.Contains(cluster.ReservedNames, "ca") {
		t.Error(`"ca" is not reserved`)
	}
}

// cfssl's errors print as JSON documents; what reaches an operator is the
// message alone.
func TestPlainStripsCfsslJSON(t *testing.T) {
	err := fmt.Errorf("sign %q: %w", "n", plain(cferr.New(cferr.PrivateKeyError, cferr.ParseFailed)))
	if strings.ContainsAny(err.Error(), "{}") {
		t.Errorf("error carries JSON: %v", err)
	}
	if !strings.Contains(err.Error(), "Failed to parse private key") {
		t.Errorf("error lost cfssl's message: %v", err)
	}
}
