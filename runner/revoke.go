// revoke.go is the revocation engine that etcdpki certs revoke (package
// revoke) and member remove both run: a certificate in use is replaced
// and the replacement proven before its old serial is published in the
// CRL, and then every member is shown refusing it on its client and peer
// port, with no restart (etcd reads its CRL on every accepted
// connection). Each step is journaled (State.Revoke).

package runner

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// Revoke steps, in order.
const (
	StepRenew   = "renew"
	StepProve   = "prove"
	StepPublish = "publish"
	StepDeploy  = "deploy"
	StepRefused = "refused"
)

// Steps of the other progress lines the runner reports.
const (
	StepCheck   = "check"
	StepResume  = "resume"
	StepLayout  = "layout"
	StepModes   = "modes"
	StepCRL     = "crl"
	StepRestart = "restart"
	StepHandOff = "hand-off"
	StepClient  = "client"
)

// RevokeResult says what Revoke did.
type RevokeResult struct {
	// Revoked are the CRL's new entries (none when all were revoked).
	Revoked []pki.Revoked
	// Unchanged is true when there was nothing to revoke.
	Unchanged bool
	// Verdicts are every port's verdict on each revoked certificate.
	Verdicts []PortVerdict
	// Refused is how long the proof took, until every port refused;
	// Effect runs from the start of the CRL's publication (its write into
	// the PKI directory and the bundles) through the deploys until every
	// port refused; Took is the whole run.
	Refused, Effect, Took time.Duration
	published             time.Time
}

// RevokeRequest is what the runner's revocation engine revokes: the
// request half of revoke.Options, which member remove builds too.
// Exactly one of Targets (with Gone) and Serials is set.
type RevokeRequest struct {
	// Targets are certificates in use: each is renewed, deployed and
	// proven before its old serial is revoked.
	Targets []pki.Target
	// Serials (lower-case hex) are certificates no longer in use.
	Serials []string
	// Gone are target IDs the spec no longer has, accepted only to
	// finish the journaled revoke that names them.
	Gone []string
	// Reason is an RFC 5280 reason name (pki.Reasons); "" means
	// unspecified.
	Reason string
	// Force revokes a serial not tied to this CA, and a target again
	// although the certificate in use replaced one revoked before.
	Force bool
	// RefuseTimeout bounds the wait for every port to refuse the revoked
	// certificate once the CRL is deployed; 0 means 30 seconds.
	RefuseTimeout time.Duration
	// AfterStep, in tests, is called after each step ran (journaled
	// false) and after the journal moved past it (true); an error ends
	// the run there, as a kill would. nil in production.
	AfterStep func(step string, journaled bool) error
}

// Check fills in the defaults and refuses a malformed request (exit 2).
func (o *RevokeRequest) Check() error {
	if o.Reason == "" {
		o.Reason = "unspecified"
	}
	if _, ok := pki.Reasons[o.Reason]; !ok {
		return &input.Error{Err: fmt.Errorf("--reason %q: use one of %s", o.Reason, pki.ReasonNames())}
	}
	if (len(o.Targets)+len(o.Gone) == 0) == (len(o.Serials) == 0) {
		return &input.Error{Err: errors.New("certs revoke: name the certificates (TARGET) or give --serial, one or the other")}
	}
	for i, s := range o.Serials {
		n, ok := new(big.Int).SetString(strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(s, ":", "")), "0x"), 16)
		if !ok || n.Sign() <= 0 {
			return &input.Error{Err: fmt.Errorf("--serial %q: not a positive hexadecimal serial", s)}
		}
		o.Serials[i] = fmt.Sprintf("%x", n)
	}
	if o.RefuseTimeout <= 0 {
		o.RefuseTimeout = 30 * time.Second
	}
	return nil
}

// Revoke runs the journaled revocation of o, or finishes the journal's.
func (r *Runner) Revoke(ctx context.Context, o RevokeRequest, res *RevokeResult) error {
	st := r.Journal
	want := &RevokeJournal{Targets: append(pki.IDs(o.Targets), o.Gone...), Serials: o.Serials, Reason: o.Reason}
	want.Request = slices.Sorted(slices.Values(append(slices.Clone(want.Targets), want.Serials...)))
	j := st.Revoke
	switch {
	case j != nil && !slices.Equal(j.Request, want.Request):
		return &input.Error{Err: errors.New(j.Note() + " first")}
	case j != nil:
		r.Log.Step(StepResume, strings.Join(append(slices.Clone(j.Targets), j.Serials...), ", ")).Info("resuming the revoke of %s at step %s", strings.Join(append(slices.Clone(j.Targets), j.Serials...), ", "), j.Step)
	case len(o.Gone) > 0:
		return input.Errorf("certs revoke: unknown certificate %q (see etcdpki certs list)", o.Gone[0])
	default:
		want.Targets, want.Serials = nil, nil
		var err error
		if j, err = r.newRevoke(o, want, res); err != nil || j == nil {
			return err
		}
	}
	steps := []struct {
		name string
		do   func(context.Context, *RevokeJournal, RevokeRequest, *RevokeResult) error
	}{
		{StepRenew, r.revokeRenew},
		{StepProve, r.revokeProveNew},
		{StepPublish, r.revokePublish},
		{StepDeploy, r.revokeDeploy},
		{StepRefused, r.revokeRefused},
	}
	for i, s := range steps {
		if s.name != j.Step {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "revoke step " + s.name}
		}
		if err := s.do(context.WithoutCancel(ctx), j, o, res); err != nil {
			return &unfinishedError{err: err, j: j}
		}
		if err := o.after(s.name, false); err != nil {
			return err
		}
		if i+1 < len(steps) {
			j.Step = steps[i+1].name
		} else {
			st.Revoke = nil
		}
		if err := st.Save(r.Inv.Spec.PKIDir, r.Cfg.Now()); err != nil {
			return err
		}
		if err := o.after(s.name, true); err != nil {
			return err
		}
	}
	return nil
}

func (o *RevokeRequest) after(step string, journaled bool) error {
	if o.AfterStep == nil {
		return nil
	}
	return o.AfterStep(step, journaled)
}

// revokeTargets are the journal's targets that the spec still has. One
// that left it (its node was taken out of the spec) is no longer in use
// here: nothing renews or proves it, and its old serial is still revoked
// from the journal's entries.
func (r *Runner) revokeTargets(j *RevokeJournal) []pki.Target {
	var out []pki.Target
	for _, id := range j.Targets {
		picked, missing := pki.Select(r.Inv.Targets, []string{id})
		if len(missing) > 0 || len(picked) != 1 {
			r.Log.Step(StepRenew, id).Serial(j.Old[id]).Skipped("%s is no longer in the spec: it is not replaced, and its serial %s is revoked", id, pki.ShortSerial(j.Old[id]))
			continue
		}
		out = append(out, picked[0])
	}
	return out
}

// FinishCommand is the command that finishes the journaled revoke.
func (j *RevokeJournal) FinishCommand() string {
	cmd := "etcdpki certs revoke --reason " + j.Reason
	if len(j.Targets) > 0 || len(j.Serials) == 0 {
		return cmd + " " + strings.Join(j.Request, " ")
	}
	for _, s := range j.Request {
		cmd += " --serial " + s
	}
	return cmd
}

// Note says what the unfinished revoke is and how to finish it.
func (j *RevokeJournal) Note() string {
	return fmt.Sprintf("an earlier revoke of %s is unfinished (step %s): run `%s` to finish it", strings.Join(j.Request, " "), j.Step, j.FinishCommand())
}

// PendingRevoke is the journal's unfinished revoke, nil when there is
// none (or the journal cannot be read: the command that runs next says
// why).
func PendingRevoke(pkiDir string) *RevokeJournal {
	st, err := LoadState(pkiDir)
	if err != nil {
		return nil
	}
	return st.Revoke
}

// unfinishedError is a revoke step that failed after the journal was
// written: not bad input (exit 1), and the same command finishes it.
type unfinishedError struct {
	err error
	j   *RevokeJournal
}

func (e *unfinishedError) Error() string {
	return fmt.Sprintf("%v; the revoke is journaled at step %s: fix that and run `%s` again to finish it", e.err, e.j.Step, e.j.FinishCommand())
}

func (e *unfinishedError) Unwrap() error { return e.err }

// ExitCode is 1: a step failed, after the journal was written.
func (e *unfinishedError) ExitCode() int { return 1 }
