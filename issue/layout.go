package issue

import (
	"fmt"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// MigrateLayout moves every store of the PKI directory still in the
// layout before named stores (one "..data" and the versions in the bundle
// directory itself) into its named store, with the same bytes, and
// returns the directories it moved. Any write migrates the stores it
// touches; rotate calls this first so that a run with nothing due
// migrates too. The caller holds the PKI directory's lock and passes the
// inventory its command expanded.
func MigrateLayout(inv *pki.Inventory) ([]string, error) {
	stores := []atomicdir.Store{inv.Paths.CAStore(), inv.Paths.NextCAStore()}
	for _, t := range inv.Targets {
		stores = append(stores, t.Store(), t.CAStore())
	}
	seen := map[string]bool{}
	var moved []string
	for _, st := range stores {
		if seen[st.Dir] {
			continue
		}
		seen[st.Dir] = true
		did, err := atomicdir.Migrate(st)
		if err != nil {
			return moved, fmt.Errorf("move %s to the store layout: %w", st.Dir, err)
		}
		if did {
			moved = append(moved, st.Dir)
		}
	}
	return moved, nil
}
