package e2e

import (
	"os"
	"strconv"
	"testing"
)

// faultTrials is how many trials each leader-kill test runs: the
// environment's ETCDPKI_FAULT_TRIALS, 1 when unset. Each trial of a CA
// rotation takes about two minutes on two cores, so `make test` (CI) runs
// one trial of each, at a random step, and `make test-faults` the five
// the docs report.
func faultTrials(t testing.TB) int {
	v := os.Getenv("ETCDPKI_FAULT_TRIALS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("ETCDPKI_FAULT_TRIALS=%q: want a whole number of trials, at least 1", v)
	}
	return n
}
