package rotate

import "github.com/etcdpki/etcdpki/issue"

// tighten re-tightens the modes of what the PKI directory's writers own
// (see issue.Tighten) at the end of every run that was not refused: a
// loose key in a store this run did not write would otherwise stay loose.
func (r *runner) tighten() error {
	fixed, err := issue.Tighten(r.inv)
	for _, f := range fixed {
		r.log.printf("tightened %s", f)
	}
	return err
}
