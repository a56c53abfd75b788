package revoke_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/revoke"
)

// TestRenewFailureSaysRenewOnce: a renewal that fails while switching
// the new pairs in (here a rename the filesystem refuses) reports it in
// one message that says "renew:" once and names what failed.
func TestRenewFailureSaysRenewOnce(t *testing.T) {
	c := livetest.RevokeCluster(t)
	id := etcdtest.NodeName(2) + "/etcd-healthcheck-client"
	targets, _ := pki.Select(pki.New(c.Spec).Targets, []string{id})
	dir := c.Paths.NodeCertDir(etcdtest.NodeName(2))
	restore := atomicdir.SetHook(func(op, path string) error {
		if op == "rename" && strings.HasPrefix(path, dir) {
			return errors.New("injected rename failure")
		}
		return nil
	})
	_, err := revoke.Revoke(context.Background(), pki.New(c.Spec), revoke.Options{Targets: targets})
	restore()
	if err == nil || !strings.Contains(err.Error(), "injected rename failure") {
		t.Fatalf("revoke with a failing rename: %v", err)
	}
	// The cause, before the journal's note on how to finish (which names
	// the step, "renew:", on its own).
	cause, _, _ := strings.Cut(err.Error(), "; the revoke is journaled")
	if n := strings.Count(cause, "renew:"); n != 1 || !strings.HasPrefix(cause, "renew: ") {
		t.Errorf("%q says renew: %d times, want once, first", cause, n)
	}
}
