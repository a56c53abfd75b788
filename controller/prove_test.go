package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
	"github.com/etcdpki/etcdpki/pki"
)

// TestProveMembersReadsTheServedSerials proves a real member's ports with
// a probe certificate minted in memory, and names the member whose ports
// do not answer.
func TestProveMembersReadsTheServedSerials(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 2})
	inv := pki.New(c.Spec)
	a, err := pki.LoadCA(c.Paths)
	if err != nil {
		t.Fatal(err)
	}
	var pc probeCerts
	cfg, err := pc.config(a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Members[1].Stop(); err != nil {
		t.Fatal(err)
	}
	got := ProveMembers(context.Background(), inv, cfg)
	if len(got) != 2 || got[0].Err != nil {
		t.Fatalf("proofs %+v", got)
	}
	for _, s := range got[0].Served {
		tg, _ := inv.Target(s.ID)
		want := certx.Serial(testpki.ReadCert(t, tg.CertPath()))
		if s.Serial != want || s.Owner != c.Spec.Nodes[0].Name {
			t.Errorf("%s: served %s, the PKI has %s", s.ID, s.Serial, want)
		}
	}
	if len(got[0].Served) != 2 {
		t.Errorf("served %+v, want the server and peer certificates", got[0].Served)
	}
	if e := got[1].Err; e == nil || !strings.Contains(e.Error(), "client port") || got[1].Node != c.Spec.Nodes[1].Name {
		t.Errorf("a stopped member: %+v", got[1])
	}
}
