//go:build cgo && !nopkcs11

package auth_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/auth"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
	"github.com/etcdpki/etcdpki/pki"
)

// TestApplyWithTheCAKeyInAToken: with the CA key in a SoftHSM2 token,
// auth apply signs its root client through the token, as every other
// signing does, and no file under the PKI directory ends up holding a
// certificate whose CN is root (the root client lives in memory only).
func TestApplyWithTheCAKeyInAToken(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	c := etcdtest.Start(t, etcdtest.Options{Name: "authtoken", Members: 1, Edit: func(f *etcdtest.SpecFile) {
		withAuth(f)
		f.CA.Key = tk.URI("etcd-ca")
	}})
	if c.Spec.CA.Token == nil {
		t.Fatal("the spec's CA key is not in the token")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if _, err := auth.Apply(ctx, pki.New(c.Spec), auth.Options{Out: &out}); err != nil {
		t.Fatalf("auth apply with the CA key in a token: %v\n%s", err, out.String())
	}
	if got := live(ctx, t, c); !got.Enabled {
		t.Error("auth is off after the apply")
	}
	filepath.WalkDir(c.Paths.PKI, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(path, ".crt") {
			return err
		}
		data, _ := os.ReadFile(path)
		certs, _ := certx.ParseCertificates(data)
		for _, cert := range certs {
			if cert.Subject.CommonName == "root" {
				t.Errorf("%s holds a root certificate: the root client must stay in memory", path)
			}
		}
		return nil
	})
}
