//go:build cgo && !nopkcs11

package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
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
			before := livetest.Serials(t, spec)
			ld := livetest.StartLoad(t, c)
			var out bytes.Buffer
			res, err := rotate.Run(ctx, pki.New(spec), rotate.Options{Out: &out, RenewBefore: 87600 * time.Hour})
			st := ld.Stop()
			t.Logf("rotate output:\n%s", out.String())
			if err != nil {
				t.Fatalf("rotate: %v", err)
			}
			t.Logf("load: %d requests, %d failed, worst %s", st.Ops, st.Fails, st.Worst)
			for _, f := range st.Failures {
				t.Errorf("failed request: %s", f)
			}
			livetest.CheckAcked(t, c, c.APIServerTLS(), st)
			if len(res.Proofs) != len(spec.Nodes) || len(res.Members) != 0 {
				t.Errorf("%d members proven and %d restarted; want %d proven, none restarted", len(res.Proofs), len(res.Members), len(spec.Nodes))
			}
			after := livetest.Serials(t, spec)
			for id, s := range after {
				if before[id] == s {
					t.Errorf("%s was not renewed", id)
				}
			}
			livetest.CheckServing(t, c)
			livetest.CheckHealthy(t, c)
			if holders := livetest.CAKeyHolders(t, spec); home == "token" && len(holders) != 0 {
				t.Errorf("files under the PKI hold the CA key that is in the token: %v", holders)
			} else if home == "file" && len(holders) != 1 {
				t.Errorf("files holding the file CA key: %v, want ca.key alone", holders)
			}
			wantKey := map[string]string{"file": "file " + filepath.Join(spec.PKIDir, "etcd", "ca.key"), "token": "pkcs11: token etcd, object etcd-ca (sensitive, not extractable)"}[home]
			if got := livetest.CAKeyRow(t, c); got.Status != verify.OK || got.Reason != wantKey {
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
			_, err = rotate.Run(ctx, pki.New(spec), rotate.Options{Out: &out, RenewBefore: 87600 * time.Hour, MetricsFile: metrics})
			want := "CA key pkcs11: token etcd, object etcd-ca: wrong PIN (pin-source " + tk.PINFile + ")"
			var ic input.Coder
			if err == nil || !strings.Contains(err.Error(), want) || errors.As(err, &ic) {
				t.Fatalf("rotate with the token unavailable: %v; want a failed run (exit 1) saying %q", err, want)
			}
			if got := livetest.Serials(t, spec); fmt.Sprint(got) != fmt.Sprint(after) {
				t.Errorf("a certificate changed although the token was unavailable:\n%v\n%v", after, got)
			}
			m, err := os.ReadFile(metrics)
			if err != nil {
				t.Fatal(err)
			}
			if line := fmt.Sprintf("etcdpki_rotate_last_run_success{cluster=%q} 0", spec.Name); !strings.Contains(string(m), line) {
				t.Errorf("metrics file has no %q:\n%s", line, m)
			}
			if got := livetest.CAKeyRow(t, c); got.Status != verify.Fail || !strings.Contains(got.Reason, want) {
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
