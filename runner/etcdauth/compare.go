package etcdauth

import (
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/cluster"
)

// Effective is what user may do in st: the grants of every role it
// holds (etcdpki's and anyone else's), whether one of them is root, and
// whether the user exists at all.
func (st State) Effective(user string) (grants []Grant, root, exists bool) {
	roles, exists := st.Users[user]
	for _, r := range roles {
		if r == cluster.RootUser {
			root = true
		}
		grants = append(grants, st.Roles[r]...)
	}
	return normalize(grants), root, exists
}

// Uncovered are the grants of have that no grant of want covers: a
// grant is covered by one whose range holds all of its keys and whose
// access holds all of its access. Uncovered(live, desired) is what a
// user may do beyond what the spec gives it; Uncovered(desired, live)
// what it lacks.
func Uncovered(have, want []Grant) []Grant {
	var out []Grant
	for _, g := range have {
		if !slices.ContainsFunc(want, func(w Grant) bool { return w.covers(g) }) {
			out = append(out, g)
		}
	}
	return out
}

// covers says whether w allows everything g allows.
func (w Grant) covers(g Grant) bool {
	if w.Access != cluster.AccessReadWrite && w.Access != g.Access {
		return false
	}
	if w.RangeEnd == "" {
		return g.RangeEnd == "" && g.Key == w.Key
	}
	if g.Key < w.Key {
		return false
	}
	// etcd's range end "\x00" is "every key from Key on".
	open := w.RangeEnd == fromKey
	if g.RangeEnd == "" {
		return open || g.Key < w.RangeEnd
	}
	return open || (g.RangeEnd != fromKey && g.RangeEnd <= w.RangeEnd)
}

// fromKey is the range end that means "to the end of the keyspace", as
// clientv3.GetPrefixRangeEnd gives it for the empty prefix.
var fromKey = clientv3.GetPrefixRangeEnd("")
