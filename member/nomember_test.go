package member_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
)

// TestMemberAddWithNoMemberInTheSpec: a spec that names no current
// member gets one line saying so (and which endpoints were asked, and
// who the members are), not etcd's "no available endpoints"; bad input,
// nothing changed.
func TestMemberAddWithNoMemberInTheSpec(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	m4 := c.AddNode(t, nil)
	n4, _ := c.Spec.Node(m4.Name)
	n1, _ := c.Spec.Node(etcdtest.NodeName(1))
	// A stranger at etcd-1's client URL: the member list answers, and
	// names no node of this spec.
	stranger := n1
	stranger.Name, stranger.PeerURLs = "etcd-x", []string{"https://127.0.0.1:1"}
	for _, tc := range []struct {
		what  string
		nodes []cluster.Node
		want  []string
	}{
		{"only the node being added", []cluster.Node{n4}, []string{"no etcd member to ask", "names no running member"}},
		{"no node a member", []cluster.Node{stranger, n4}, []string{"no node in the spec", "is a voting member", n1.ClientURLs[0], "etcd-1 ("}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			s := *c.Spec
			s.Nodes = tc.nodes
			journal := journalBytes(c)
			_, err := member.Add(context.Background(), pki.New(&s), member.Options{Name: m4.Name})
			var ie *input.Error
			if !errors.As(err, &ie) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line of bad input", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "no available endpoints") {
				t.Errorf("etcd's own words: %v", err)
			}
			if journalBytes(c) != journal || m4.Running() {
				t.Error("something changed")
			}
		})
	}
}
