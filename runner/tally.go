package runner

import (
	"time"
)

// Tally is what the runner's roll and proofs did, in order: every
// operation that restarts or proves members reports it.
type Tally struct {
	// Members are the restarted members, in order.
	Members []MemberResult
	// Proofs are the members whose renewed certificates were proven in
	// effect without a restart, in order.
	Proofs []ProofResult
	// HandOffs are the leadership transfers the run made.
	HandOffs []HandOff
}

// Floor is the sum of the members' restart-to-healthy times.
func (r *Tally) Floor() time.Duration {
	var d time.Duration
	for _, m := range r.Members {
		d += m.Restart
	}
	return d
}

// ProofTime is the sum of the members' proof times.
func (r *Tally) ProofTime() time.Duration {
	var d time.Duration
	for _, p := range r.Proofs {
		d += p.Took
	}
	return d
}
