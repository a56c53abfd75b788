package runner

import (
	"github.com/etcdpki/etcdpki/issue"
)

// Tighten re-tightens the modes of what the PKI directory's writers own
// (see issue.Tighten) at the end of every run that was not refused: a
// loose key in a store this run did not write would otherwise stay loose.
func (r *Runner) Tighten() error {
	fixed, err := issue.Tighten(r.Inv)
	for _, f := range fixed {
		r.Log.Step(StepModes, f).Done("tightened %s", f)
	}
	return err
}
