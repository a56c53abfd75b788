//go:build cgo && !nopkcs11

package carotate

import (
	"context"
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
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// TestRetireTokenCrashAtEveryStepConverges is the retirement's crash test
// with the CA key in a token: killed at each filesystem step (the token's
// relabels fall between them), the CA in effect is always one that opens,
// and the next run ends with the new CA's key under the spec's label, the
// old key under its retired label and named so in its backup, and no key
// file anywhere.
func TestRetireTokenCrashAtEveryStepConverges(t *testing.T) {
	steps := 0
	for n := 1; ; n++ {
		tk := softhsm.New(t, "etcd")
		s, err := cluster.Parse([]byte("name: crash\nlocal: true\nca:\n  key: "+tk.URI("etcd-ca")+"\nnodes:\n  - {name: etcd-1, ips: [127.0.0.1], restart: \"true\"}\n"), "", cluster.Options{PKIDir: filepath.Join(ramdir.TempDir(t), "pki")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{}); err != nil {
			t.Fatal(err)
		}
		cr := newCARun(t, s)
		if _, err := cr.prepare(); err != nil {
			t.Fatal(err)
		}
		old, next := cr.rot.Old, cr.rot.Next
		cr.journal().Done[pki.CAStageFinish] = time.Now()
		if err := cr.save(); err != nil {
			t.Fatal(err)
		}
		stopped := crashpoint.RunUntilStep(t, n, cr.retire)
		if stopped == "" {
			steps = n - 1
			break
		}
		in, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
		if err != nil {
			t.Fatalf("killed at %s: the CA in effect does not open: %v", stopped, err)
		}
		if !in.Cert.Equal(old.Cert) && !in.Cert.Equal(next.Cert) {
			t.Fatalf("killed at %s: PKI/etcd holds neither CA", stopped)
		}
		rot, err := pki.ReadCARotation(pki.New(s))
		if err != nil {
			t.Fatalf("killed at %s: %v", stopped, err)
		}
		if rot.InProgress() {
			again := newCARun(t, s)
			if _, _, err := again.restartStage(context.Background(), pki.CAStageFinish, &StageResult{}); err != nil {
				t.Fatalf("killed at %s: next run: %v", stopped, err)
			}
		}
		checkTokenRetired(t, s, old, next, stopped)
		if t.Failed() {
			return
		}
	}
	if steps < 5 {
		t.Fatalf("retire made only %d filesystem steps", steps)
	}
	t.Logf("retire with the CA key in a token: killed at each of %d steps, every next run converged", steps)
}

func checkTokenRetired(t *testing.T, s *cluster.Spec, old, next *ca.CA, stopped string) {
	t.Helper()
	in, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil || !in.Cert.Equal(next.Cert) {
		t.Fatalf("killed at %s: PKI/etcd is not the new CA: %v", stopped, err)
	}
	if d, err := ca.DescribeTokenKey(in); err != nil || d.Label != "etcd-ca" || in.Token.Object != "etcd-ca" {
		t.Errorf("killed at %s: the new CA's key is labelled %q (%v), its URI names %q; want etcd-ca", stopped, d.Label, err, in.Token.Object)
	}
	uri, err := os.ReadFile(filepath.Join(s.PKIDir, "backup", "ca-"+certx.Serial(old.Cert), ca.KeyURIFile))
	if err != nil {
		t.Fatalf("killed at %s: the old CA's backup: %v", stopped, err)
	}
	retired, err := ca.ParseStore(old.CertPEM, nil, uri, "ca.crt", "", "ca.key.uri")
	if err != nil {
		t.Fatalf("killed at %s: the retired CA does not open from its backup: %v", stopped, err)
	}
	want := ca.RetiredLabel("etcd-ca", old.Cert.SerialNumber.Text(16))
	if d, err := ca.DescribeTokenKey(retired); err != nil || d.Label != want || retired.Token.Object != want {
		t.Errorf("killed at %s: the old key is labelled %q (%v), its backup names %q; want %q", stopped, d.Label, err, retired.Token.Object, want)
	}
	filepath.WalkDir(s.PKIDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == ca.KeyFile {
			t.Errorf("killed at %s: a CA key file %s", stopped, path)
		}
		if err == nil && strings.HasSuffix(d.Name(), ".tmp") {
			t.Errorf("killed at %s: temporary file %s", stopped, path)
		}
		return nil
	})
}
