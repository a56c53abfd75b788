//go:build cgo && !nopkcs11

package rotate_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/carotate"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/verify"
)

// TestRotateWithTheCAKeyInAToken rotates every leaf of a real cluster
// under load with the CA key in a file and in a SoftHSM2 token: no request
// fails, the new leaves are proven on the wire, and with the token no file
// under the PKI ever holds the CA's key. Then the token becomes
// unavailable (a wrong PIN): the next rotation stops before writing a
// certificate, exits 1, and the metrics file says the run failed.
func TestRotateWithTheCAKeyInAToken(t *testing.T) {
	for _, home := range []string{"file", "token"} {
		t.Run(home, func(t *testing.T) {
			var tk *softhsm.Token
			if home == "token" {
				tk = softhsm.New(t, "etcd")
			}
			c := etcdtest.Start(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
				if tk != nil {
					f.CA.Key = tk.URI("etcd-ca")
				}
			}})
			spec := c.Spec
			if (spec.CA.Token != nil) != (home == "token") {
				t.Fatalf("spec's CA key home is not %s", home)
			}
			ctx := context.Background()
			before := serials(t, spec)
			ld := startLoad(t, c)
			var out bytes.Buffer
			res, err := rotate.Run(ctx, rotate.Options{Spec: spec, Out: &out, RenewBefore: 87600 * time.Hour})
			st := ld.stop()
			t.Logf("rotate output:\n%s", out.String())
			if err != nil {
				t.Fatalf("rotate: %v", err)
			}
			t.Logf("load: %d requests, %d failed, worst %s", st.ops, st.fails, st.worst)
			for _, f := range st.failures {
				t.Errorf("failed request: %s", f)
			}
			checkAcked(t, c, c.APIServerTLS(), st)
			if len(res.Proofs) != len(spec.Nodes) || len(res.Members) != 0 {
				t.Errorf("%d members proven and %d restarted; want %d proven, none restarted", len(res.Proofs), len(res.Members), len(spec.Nodes))
			}
			after := serials(t, spec)
			for id, s := range after {
				if before[id] == s {
					t.Errorf("%s was not renewed", id)
				}
			}
			checkServing(t, c)
			checkHealthy(t, c)
			if holders := caKeyHolders(t, spec); home == "token" && len(holders) != 0 {
				t.Errorf("files under the PKI hold the CA key that is in the token: %v", holders)
			} else if home == "file" && len(holders) != 1 {
				t.Errorf("files holding the file CA key: %v, want ca.key alone", holders)
			}
			wantKey := map[string]string{"file": "file " + filepath.Join(spec.PKIDir, "etcd", "ca.key"), "token": "pkcs11: token etcd, object etcd-ca (sensitive, not extractable)"}[home]
			if got := caKeyRow(t, c); got.Status != verify.OK || got.Reason != wantKey {
				t.Errorf("verify's ca-key row: %s %q, want ok %q", got.Status, got.Reason, wantKey)
			}
			if home == "file" {
				return
			}

			// The token is unavailable at the next rotation.
			if err := os.WriteFile(tk.PINFile, []byte("0000\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			metrics := filepath.Join(t.TempDir(), "etcdpki.prom")
			out.Reset()
			_, err = rotate.Run(ctx, rotate.Options{Spec: spec, Out: &out, RenewBefore: 87600 * time.Hour, MetricsFile: metrics})
			want := "CA key pkcs11: token etcd, object etcd-ca: wrong PIN (pin-source " + tk.PINFile + ")"
			var ic input.Coder
			if err == nil || !strings.Contains(err.Error(), want) || errors.As(err, &ic) {
				t.Fatalf("rotate with the token unavailable: %v; want a failed run (exit 1) saying %q", err, want)
			}
			if got := serials(t, spec); fmt.Sprint(got) != fmt.Sprint(after) {
				t.Errorf("a certificate changed although the token was unavailable:\n%v\n%v", after, got)
			}
			m, err := os.ReadFile(metrics)
			if err != nil {
				t.Fatal(err)
			}
			if line := fmt.Sprintf("etcdpki_rotate_last_run_success{cluster=%q} 0", spec.Name); !strings.Contains(string(m), line) {
				t.Errorf("metrics file has no %q:\n%s", line, m)
			}
			if got := caKeyRow(t, c); got.Status != verify.Fail || !strings.Contains(got.Reason, want) {
				t.Errorf("verify's ca-key row with the token unavailable: %s %q, want fail %q", got.Status, got.Reason, want)
			}
			journal, err := runner.LoadState(spec.PKIDir)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(journal.LastError, "wrong PIN") {
				t.Errorf("journal's last error %q does not name the token", journal.LastError)
			}
		})
	}
}

// caKeyRow is verify's ca-key check for the cluster's spec.
func caKeyRow(t *testing.T, c *etcdtest.Cluster) verify.Check {
	t.Helper()
	rep, err := verify.Evaluate(context.Background(), verify.Options{SpecFile: c.SpecPath, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range rep.Checks {
		if ch.Name == verify.CheckCAKey {
			return ch
		}
	}
	t.Fatal("verify --spec has no ca-key check")
	return verify.Check{}
}

// caKeyHolders lists the files under the PKI that hold the private key
// matching ca.crt.
func caKeyHolders(t *testing.T, s *cluster.Spec) []string {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(s.PKIDir, "etcd", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := ca.ParseCert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	var holders []string
	err = filepath.WalkDir(s.PKIDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if key, err := certx.ParseKey(pem.EncodeToMemory(b)); err == nil && certx.KeyMatches(caCert, key.Public()) {
				holders = append(holders, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return holders
}

// TestCARotateWithTheCAKeyInAToken runs all four stages of ca rotate on a
// real cluster whose CA key is in a token: the next CA's key is made in
// the same token, the old key is retired by relabelling (never deleted)
// and named so in the backup, the new key takes the spec's label, and no
// file under the PKI holds either key.
func TestCARotateWithTheCAKeyInAToken(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	c := etcdtest.Start(t, etcdtest.Options{Edit: func(f *etcdtest.SpecFile) {
		f.CA.Key = tk.URI("etcd-ca")
		f.Certs.Validity = "2h"
		f.Clients = append(f.Clients, cluster.FileClient{Name: cluster.ClientAPIServer, Restart: "true"})
	}})
	spec := c.Spec
	old, err := pki.LoadCA(pki.Paths{PKI: spec.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	runCA(t, carotate.CAOptions{Spec: spec})
	now, err := pki.LoadCA(pki.Paths{PKI: spec.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	if now.Cert.Equal(old.Cert) || certx.KeyMatches(now.Cert, old.Cert.PublicKey) {
		t.Fatal("the CA in effect is still the old one, or has its key")
	}
	if !now.InToken() || now.Token.Object != "etcd-ca" {
		t.Fatalf("the new CA's key is %s, want the token under the spec's label", now.KeyWhere("ca.key"))
	}
	d, err := ca.DescribeTokenKey(now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Label != "etcd-ca" || d.Extractable || !d.Sensitive {
		t.Errorf("new CA key in the token: %+v", d)
	}
	backup := filepath.Join(spec.PKIDir, "backup", "ca-"+certx.Serial(old.Cert))
	certPEM, err := os.ReadFile(filepath.Join(backup, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	uri, err := os.ReadFile(filepath.Join(backup, ca.KeyURIFile))
	if err != nil {
		t.Fatalf("the old CA's backup does not name its token key: %v", err)
	}
	retired, err := ca.ParseStore(certPEM, nil, uri, "backup ca.crt", "", "backup ca.key.uri")
	if err != nil {
		t.Fatalf("the retired CA cannot be opened from its backup: %v", err)
	}
	d, err = ca.DescribeTokenKey(retired)
	if err != nil {
		t.Fatal(err)
	}
	if want := ca.RetiredLabel("etcd-ca", old.Cert.SerialNumber.Text(16)); d.Label != want || retired.Token.Object != want || d.Extractable {
		t.Errorf("retired key %+v named %q in the backup; want label %q", d, retired.Token.Object, want)
	}
	if holders := caKeyHolders(t, spec); len(holders) != 0 {
		t.Errorf("files under the PKI hold the new CA's key: %v", holders)
	}
	infos, err := pki.List(pki.New(spec), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Status != pki.StatusOK || (i.Name != "etcd-ca" && i.CA != now.Cert.Subject.CommonName) {
			t.Errorf("%s: %s %s (CA %s)", i.Name, i.Status, i.Reason, i.CA)
		}
	}
	// On the wire: the run proved each stage (its proofs are in its
	// output above); once more here, every port serves a leaf the new CA
	// alone verifies, under the kube-apiserver's new certificate.
	tlsCfg, err := etcdtest.TLSConfig(c.CAFile(), filepath.Join(spec.PKIDir, "apiserver", "apiserver-etcd-client.crt"), filepath.Join(spec.PKIDir, "apiserver", "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range spec.Nodes {
		for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
			_, addr, _ := probe.ParseEndpoint(u)
			if _, err := probe.ServingCert(context.Background(), addr, tlsCfg); err != nil {
				t.Errorf("%s: %v", addr, err)
			}
		}
	}
}
