package revoke

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// TestRevokeCrashAtEveryStepConverges stops a revocation after each of
// its steps, before and after the journal records it, as a kill would,
// then runs the same revocation again: it must finish, with the old
// serial in the CRL and refused on every port and the replacement
// accepted, and the journal clear.
func TestRevokeCrashAtEveryStepConverges(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := etcdtest.Start(t, etcdtest.Options{FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		f.Clients = append(f.Clients, cluster.FileClient{Name: "etcd-admin"})
	}})
	ctx := context.Background()
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{"client/etcd-admin"})
	tg := targets[0]
	pool, err := probe.LoadCertPool(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{runner.StepRenew, runner.StepProve, runner.StepPublish, runner.StepDeploy, runner.StepRefused} {
		for _, when := range []string{step + " unjournaled", step} {
			old, err := tls.LoadX509KeyPair(tg.CertPath(), tg.KeyPath())
			if err != nil {
				t.Fatal(err)
			}
			oldSerial, _ := runner.DiskSerial(tg)
			var out bytes.Buffer
			o := Options{Targets: targets, Reason: "keyCompromise", Force: true, Out: &out}
			o.crashAt = when
			if _, err := Revoke(ctx, pki.New(c.Spec), o); !errors.Is(err, errCrash) {
				t.Fatalf("crash after %s: %v\n%s", when, err, out.String())
			}
			st, err := runner.LoadState(c.Spec.PKIDir)
			if err != nil {
				t.Fatal(err)
			}
			if when != runner.StepRefused && st.Revoke == nil {
				t.Fatalf("crash after %s: the journal holds no revocation", when)
			}
			if when == runner.StepPublish {
				// Another revoke must wait for this one: exit 2, nothing written.
				other, _ := pki.Select(pki.New(c.Spec).Targets, []string{"apiserver-etcd-client"})
				before, _ := os.ReadFile(c.Paths.CRL())
				_, err := Revoke(ctx, pki.New(c.Spec), Options{Targets: other, Out: &out})
				var ie *input.Error
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), "an earlier revoke of client/etcd-admin is unfinished (step deploy)") {
					t.Errorf("another revoke during an unfinished one: %v", err)
				}
				if after, _ := os.ReadFile(c.Paths.CRL()); !bytes.Equal(before, after) {
					t.Error("the refused revoke changed the CRL")
				}
			}
			o.crashAt = ""
			out.Reset()
			if _, err := Revoke(ctx, pki.New(c.Spec), o); err != nil {
				t.Fatalf("crash after %s, run again: %v\n%s", when, err, out.String())
			}
			st, _ = runner.LoadState(c.Spec.PKIDir)
			if st.Revoke != nil {
				t.Errorf("crash after %s: journal still holds %+v", when, st.Revoke)
			}
			crl, err := pki.LoadCRL(c.Paths)
			if err != nil || !crl.Has(oldSerial) {
				t.Fatalf("crash after %s: CRL lacks %s (%v)", when, oldSerial, err)
			}
			nodeCRL, _ := os.ReadFile(c.Paths.NodeCRL(etcdtest.NodeName(3)))
			caCRL, _ := os.ReadFile(c.Paths.CRL())
			if !bytes.Equal(nodeCRL, caCRL) {
				t.Errorf("crash after %s: a node's CRL differs from the CA's", when)
			}
			newPair, _ := tls.LoadX509KeyPair(tg.CertPath(), tg.KeyPath())
			if newSerial, _ := runner.DiskSerial(tg); newSerial == oldSerial || crl.Has(newSerial) {
				t.Fatalf("crash after %s: the certificate in use (%s) was not replaced or is revoked", when, newSerial)
			}
			if st.Replaced[tg.ID] == oldSerial {
				t.Errorf("crash after %s: journal says the replacement is the old serial", when)
			}
			for _, n := range c.Spec.Nodes {
				for _, u := range []string{n.ClientURLs[0], n.PeerURLs[0]} {
					_, addr, _ := probe.ParseEndpoint(u)
					if v, err := probe.Present(ctx, addr, pool, old, runner.ProbeTimeout); err != nil || v.Accepted {
						t.Errorf("crash after %s: %s: revoked pair %+v %v", when, addr, v, err)
					}
					if v, err := probe.Present(ctx, addr, pool, newPair, runner.ProbeTimeout); err != nil || !v.Accepted {
						t.Errorf("crash after %s: %s: replacement %+v %v", when, addr, v, err)
					}
				}
			}
		}
	}
}
