package rotate_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
)

// TestNothingDueClaimsInEffectOnlyWhenShown runs rotate with nothing due
// on a PKI whose members were never proven by rotate: the claim "in
// effect" comes only from fresh handshakes on every client and peer port;
// with a member down, the line says valid on disk and names the port that
// could not show it.
func TestNothingDueClaimsInEffectOnlyWhenShown(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := etcdtest.Start(t, etcdtest.Options{Members: 1})
	ctx := context.Background()
	var out bytes.Buffer
	if _, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{Out: &out}); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	if want := "server and peer certificates in effect on every member (fresh handshakes on 2 ports serve the serials on disk)"; !strings.Contains(out.String(), want) {
		t.Errorf("rotate said:\n%s\nwant it to contain %q", out.String(), want)
	}
	if err := c.Members[0].Stop(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := rotate.Run(ctx, pki.New(c.Spec), rotate.Options{Out: &out}); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	got := out.String()
	if strings.Contains(got, " in effect on") || !strings.Contains(got, "valid on disk") || !strings.Contains(got, "not proven in effect: connection refused by "+strings.TrimPrefix(c.Members[0].ClientURL, "https://")) {
		t.Errorf("with the member down rotate said:\n%s\nwant valid on disk, not proven in effect, naming %s", got, strings.TrimPrefix(c.Members[0].ClientURL, "https://"))
	}
}
