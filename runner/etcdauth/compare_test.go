package etcdauth

import (
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/cluster"
)

func TestUncoveredIsWhatWantDoesNotAllow(t *testing.T) {
	rw, r, w := cluster.AccessReadWrite, cluster.AccessRead, cluster.AccessWrite
	pre := func(p string, a cluster.Access) Grant { return prefixGrant(p, a) }
	key := func(k string, a cluster.Access) Grant { return Grant{Key: k, Access: a} }
	all := Grant{Key: "\x00", RangeEnd: clientv3.GetPrefixRangeEnd(""), Access: rw}
	for _, c := range []struct {
		name    string
		g, w    Grant
		covered bool
	}{
		{"same prefix", pre("/registry/", rw), pre("/registry/", rw), true},
		{"read under readwrite", pre("/registry/", r), pre("/registry/", rw), true},
		{"readwrite under read", pre("/registry/", rw), pre("/registry/", r), false},
		{"write under read", key("/a", w), key("/a", r), false},
		{"narrower prefix", pre("/registry/secrets/", r), pre("/registry/", rw), true},
		{"wider prefix", pre("/", r), pre("/registry/", rw), false},
		{"sibling prefix", pre("/registryx/", r), pre("/registry/", rw), false},
		{"key in prefix", key("/registry/x", rw), pre("/registry/", rw), true},
		{"key beside prefix", key("/registryx", rw), pre("/registry/", rw), false},
		{"prefix under a key", pre("/config/leader", r), key("/config/leader", r), false},
		{"other key", key("/config/leader/x", r), key("/config/leader", r), false},
		{"everything under everything", all, all, true},
		{"everything under a prefix", all, pre("/registry/", rw), false},
		{"prefix under everything", pre("/registry/", rw), all, true},
	} {
		if got := c.w.covers(c.g); got != c.covered {
			t.Errorf("%s: %v covers %v = %v, want %v", c.name, c.w, c.g, got, c.covered)
		}
		wantOut := []Grant{c.g}
		if c.covered {
			wantOut = nil
		}
		if got := Uncovered([]Grant{c.g}, []Grant{c.w}); !slices.Equal(got, wantOut) {
			t.Errorf("%s: Uncovered = %v, want %v", c.name, got, wantOut)
		}
	}
}

func TestEffectiveJoinsEveryRole(t *testing.T) {
	st := State{
		Users: map[string][]string{"a": {"etcdpki:a", "theirs"}, "r": {"root"}, "none": nil},
		Roles: map[string][]Grant{"etcdpki:a": {prefixGrant("/a/", cluster.AccessRead)}, "theirs": {prefixGrant("/a/", cluster.AccessWrite), {Key: "/k", Access: cluster.AccessRead}}, "root": nil},
	}
	grants, root, exists := st.Effective("a")
	want := []Grant{prefixGrant("/a/", cluster.AccessReadWrite), {Key: "/k", Access: cluster.AccessRead}}
	if !slices.Equal(grants, want) || root || !exists {
		t.Errorf("a: %v root %v exists %v, want %v, no root, exists", grants, root, exists, want)
	}
	if _, root, exists := st.Effective("r"); !root || !exists {
		t.Errorf("r: root %v exists %v, want both", root, exists)
	}
	if g, _, exists := st.Effective("none"); len(g) != 0 || !exists {
		t.Errorf("none: %v exists %v, want no grant, exists", g, exists)
	}
	if _, _, exists := st.Effective("nobody"); exists {
		t.Error("nobody exists")
	}
}
