// revoke.go is etcdpki certs revoke: a certificate in use is replaced and
// the replacement proven before its old serial is published in the CRL,
// and then every member is shown refusing it on its client and peer port,
// with no restart (etcd reads its CRL on every accepted connection).

package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// RevokeOptions control Revoke. Exactly one of Targets and Serials is set.
type RevokeOptions struct {
	Spec *cluster.Spec
	// Targets are certificates in use: each is renewed, deployed and
	// proven before its old serial is revoked.
	Targets []pki.Target
	// Serials (lower-case hex) are certificates no longer in use.
	Serials []string
	// Reason is an RFC 5280 reason name (pki.Reasons); "" means
	// unspecified.
	Reason string
	// Force revokes a serial not tied to this CA, and a target again
	// although the certificate in use replaced one revoked before.
	Force bool
	// Out receives one timestamped line per step and per member.
	Out io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CommandTimeout bounds one deploy command; 0 means the default.
	CommandTimeout time.Duration
	// RefuseTimeout bounds the wait for every port to refuse the revoked
	// certificate once the CRL is deployed; 0 means 30 seconds.
	RefuseTimeout time.Duration
	// crashAt, in tests, ends the run with errCrash right after the named
	// step was journaled, as a kill would ("STEP unjournaled": after the
	// step, before the journal says so).
	crashAt string
}

// RevokeJournal is a revocation in progress.
type RevokeJournal struct {
	// Request is what the command named (targets, or serials), to tell a
	// re-run of the same revoke from another one.
	Request []string `json:"request"`
	// Targets and Serials are what is being revoked: the request less
	// what was revoked before.
	Targets []string `json:"targets,omitempty"`
	Serials []string `json:"serials,omitempty"`
	Reason  string   `json:"reason"`
	// Old maps each target to the serial being revoked.
	Old map[string]string `json:"old,omitempty"`
	// Step is the next step: renew, prove, publish, deploy, refused.
	Step    string    `json:"step"`
	Started time.Time `json:"started"`
}

// Revoke steps, in order.
const (
	stepRenew   = "renew"
	stepProve   = "prove"
	stepPublish = "publish"
	stepDeploy  = "deploy"
	stepRefused = "refused"
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

var errCrash = errors.New("simulated crash")

// Revoke revokes certificates and proves every member refuses them. It
// takes the PKI directory's lock and keeps a journal, so a run killed at
// any step is finished by running the same command again.
func Revoke(ctx context.Context, o RevokeOptions) (*RevokeResult, error) {
	if err := checkRevoke(&o); err != nil {
		return nil, err
	}
	ro := Options{Spec: o.Spec, Out: o.Out, Now: o.Now, CommandTimeout: o.CommandTimeout}
	if err := ro.defaults(); err != nil {
		return nil, err
	}
	r := newRunner(ro, newLogger(ro.Out))
	release, err := r.begin()
	if err != nil {
		return nil, err
	}
	defer release()
	start := time.Now()
	res := &RevokeResult{}
	err = r.revoke(ctx, o, res)
	res.Took = time.Since(start)
	return res, err
}

func checkRevoke(o *RevokeOptions) error {
	if o.Spec == nil {
		return &input.Error{Err: errors.New("revoke: no cluster spec")}
	}
	if o.Reason == "" {
		o.Reason = "unspecified"
	}
	if _, ok := pki.Reasons[o.Reason]; !ok {
		return &input.Error{Err: fmt.Errorf("--reason %q: use one of %s", o.Reason, pki.ReasonNames())}
	}
	if (len(o.Targets) == 0) == (len(o.Serials) == 0) {
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

func (r *runner) revoke(ctx context.Context, o RevokeOptions, res *RevokeResult) error {
	st := r.st
	want := &RevokeJournal{Targets: pki.IDs(o.Targets), Serials: o.Serials, Reason: o.Reason}
	want.Request = slices.Sorted(slices.Values(append(slices.Clone(want.Targets), want.Serials...)))
	j := st.Revoke
	switch {
	case j != nil && !slices.Equal(j.Request, want.Request):
		return &input.Error{Err: fmt.Errorf("an earlier revoke of %s is unfinished (step %s): run that revoke again to finish it first", strings.Join(j.Request, " "), j.Step)}
	case j != nil:
		r.log.printf("resuming the revoke of %s at step %s", strings.Join(append(slices.Clone(j.Targets), j.Serials...), ", "), j.Step)
	default:
		var err error
		if j, err = r.newRevoke(o, want, res); err != nil || j == nil {
			return err
		}
	}
	steps := []struct {
		name string
		do   func(context.Context, *RevokeJournal, RevokeOptions, *RevokeResult) error
	}{
		{stepRenew, r.revokeRenew},
		{stepProve, r.revokeProveNew},
		{stepPublish, r.revokePublish},
		{stepDeploy, r.revokeDeploy},
		{stepRefused, r.revokeRefused},
	}
	for i, s := range steps {
		if s.name != j.Step {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "revoke step " + s.name}
		}
		if err := s.do(context.WithoutCancel(ctx), j, o, res); err != nil {
			return err
		}
		if o.crashAt == s.name+" unjournaled" {
			return errCrash
		}
		if i+1 < len(steps) {
			j.Step = steps[i+1].name
		} else {
			st.Revoke = nil
		}
		if err := st.save(r.o.Spec.PKIDir, r.o.Now()); err != nil {
			return err
		}
		if o.crashAt == s.name {
			return errCrash
		}
	}
	return nil
}

// newRevoke checks the request against the PKI directory and journals
// it; nil when there is nothing to do.
func (r *runner) newRevoke(o RevokeOptions, j *RevokeJournal, res *RevokeResult) (*RevokeJournal, error) {
	s, inv := r.o.Spec, r.inv
	crl, err := pki.LoadCRL(inv.Paths)
	if err != nil {
		return nil, err
	}
	if !s.Local {
		// The CRL changes in every bundle: each must reach its host.
		for _, n := range s.Nodes {
			if n.Deploy == "" {
				return nil, &input.Error{Err: fmt.Errorf("node %s: the CRL changes in its bundle but the spec has no deploy command to copy it to %s (set nodes[].deploy)", n.Name, n.Dir)}
			}
		}
	}
	j.Started, j.Old = r.o.Now().UTC(), map[string]string{}
	if len(o.Targets) > 0 {
		var keep []string
		for _, t := range o.Targets {
			serial, err := diskSerial(t)
			if err != nil {
				return nil, &input.Error{Err: fmt.Errorf("certs revoke %s: %w", t.ID, err)}
			}
			if prev := r.st.Replaced[t.ID]; prev == serial && !o.Force {
				r.log.printf("%s: already revoked; serial %s in effect replaced it: nothing changed (--force revokes this one too)", t.ID, pki.ShortSerial(serial))
				continue
			}
			keep = append(keep, t.ID)
			j.Old[t.ID] = serial
		}
		if len(keep) == 0 {
			res.Unchanged = true
			return nil, nil
		}
		j.Targets, j.Step = keep, stepRenew
	} else {
		inUse := map[string]string{}
		for _, t := range inv.Targets {
			if serial, err := diskSerial(t); err == nil {
				inUse[serial] = t.ID
			}
		}
		authority, err := pki.LoadCA(r.inv.Paths)
		if err != nil {
			return nil, err
		}
		var fresh []string
		for _, serial := range o.Serials {
			if id, ok := inUse[serial]; ok {
				return nil, &input.Error{Err: fmt.Errorf("--serial %s: it is %s, in use: revoke it by name (etcdpki certs revoke %s), which replaces it first", serial, id, id)}
			}
			if crl.Has(serial) {
				e, _ := crl.Entry(serial)
				r.log.printf("serial %s: already revoked on %s (%s): nothing changed", serial, e.When.UTC().Format(time.RFC3339), e.Reason)
				continue
			}
			if _, err := issuedHere(s.PKIDir, serial, authority); err != nil && !o.Force {
				return nil, &input.Error{Err: fmt.Errorf("--serial %s: %v (--force revokes it anyway)", serial, err)}
			}
			fresh = append(fresh, serial)
		}
		if len(fresh) == 0 {
			res.Unchanged = true
			return nil, nil
		}
		j.Serials, j.Step = fresh, stepPublish
	}
	r.st.Revoke = j
	if err := r.st.save(s.PKIDir, r.o.Now()); err != nil {
		return nil, err
	}
	r.log.printf("revoking %s (reason %s); journal %s", strings.Join(append(slices.Clone(j.Targets), j.Serials...), ", "), j.Reason, statePath(s.PKIDir))
	return j, nil
}

// revokeTargets are the journal's targets from the inventory.
func (r *runner) revokeTargets(j *RevokeJournal) ([]pki.Target, error) {
	picked, missing := pki.Select(r.inv.Targets, j.Targets)
	if len(missing) > 0 {
		return nil, &input.Error{Err: fmt.Errorf("revoke: certificate %s is no longer in the spec", missing[0])}
	}
	return picked, nil
}
