package pki_test

import (
	"reflect"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// TestWithoutIsNewOfTheSmallerSpec: the derived inventory is what New
// expands from the spec without the nodes, and the original is untouched.
func TestWithoutIsNewOfTheSmallerSpec(t *testing.T) {
	s, err := cluster.FromFlags("c", []string{"a=127.0.0.1", "b=127.0.0.2", "c=127.0.0.3"}, cluster.Options{PKIDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	full := pki.New(s)
	before := len(full.Targets)
	got := full.Without("b", "c")
	smaller := *s
	smaller.Nodes = s.Nodes[:1]
	want := pki.New(&smaller)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Without(b, c):\n%+v\nwant\n%+v", got, want)
	}
	if len(full.Targets) != before || len(full.Spec.Nodes) != 3 {
		t.Errorf("Without changed the inventory it was called on")
	}
}
