package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// TestVerifyShowsWhetherMembersEnforceTheCRL: with a serial revoked,
// verify --spec presents it on every member's client and peer port. A
// member started from etcd.env refuses it; one started with
// --config-file accepts it (etcd reads no CRL from a config file), and
// verify fails, saying so.
func TestVerifyShowsWhetherMembersEnforceTheCRL(t *testing.T) {
	for _, fromEnv := range []bool{true, false} {
		c := etcdtest.Start(t, etcdtest.Options{Members: 1, FromEnv: fromEnv})
		add := []pki.Revoked{{Serial: "5eed", Reason: "keyCompromise", When: time.Now()}}
		if _, err := issue.RevokeSerials(context.Background(), pki.New(c.Spec), add, issue.Options{}); err != nil {
			t.Fatal(err)
		}
		rep, err := Evaluate(context.Background(), pki.New(c.Spec), Options{})
		if err != nil {
			t.Fatal(err)
		}
		var enforced []Check
		for _, ch := range rep.Checks {
			if ch.Name == CheckCRLEnforced {
				enforced = append(enforced, ch)
			}
		}
		if len(enforced) != 2 {
			t.Fatalf("fromEnv=%v: %d crl-enforced checks, want 2 (client and peer port): %+v", fromEnv, len(enforced), rep.Checks)
		}
		for _, ch := range enforced {
			switch {
			case fromEnv && (ch.Status != OK || !strings.Contains(ch.Reason, "refuses revoked serial 5eed")):
				t.Errorf("member run from etcd.env: %+v", ch)
			case !fromEnv && (ch.Status != Fail || !strings.Contains(ch.Reason, "never from --config-file")):
				t.Errorf("member run with --config-file: %+v", ch)
			}
		}
		if rep.Passed == !fromEnv {
			t.Errorf("fromEnv=%v: passed=%v", fromEnv, rep.Passed)
		}
		if ch, ok := rep.find(CheckCRL, c.Paths.CRL()); !ok || ch.Status != OK {
			t.Errorf("crl check: %+v", ch)
		}
	}
}

func TestCRLOnGRPCListenerVersions(t *testing.T) {
	for v, want := range map[string]bool{"3.6.16": true, "3.6.13": true, "3.6.12": false, "3.5.32": true, "3.5.31": false, "3.4.23": false, "3.7.0": true, "junk": false} {
		if got := crlOnGRPCListener(v); got != want {
			t.Errorf("crlOnGRPCListener(%q) = %v, want %v", v, got, want)
		}
	}
}
