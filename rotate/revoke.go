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
	"github.com/etcdpki/etcdpki/issue"
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
	r := &runner{o: ro, log: newLogger(ro.Out), etcd: &etcdCluster{spec: o.Spec, paths: pki.Paths{PKI: o.Spec.PKIDir}}}
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
	j := st.Revoke
	switch {
	case j != nil && (!slices.Equal(j.Targets, want.Targets) || !slices.Equal(j.Serials, want.Serials)):
		what := strings.Join(append(slices.Clone(j.Targets), j.Serials...), ", ")
		return &input.Error{Err: fmt.Errorf("an earlier revoke of %s is unfinished (step %s): run that revoke again to finish it first", what, j.Step)}
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
	s := r.o.Spec
	inv := pki.New(s)
	crl, err := issue.ReadCRL(s.PKIDir)
	if err != nil {
		return nil, err
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
		authority, err := issue.LoadCA(s.PKIDir)
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
	inv := pki.New(r.o.Spec)
	picked, missing := pki.Select(inv.Targets, j.Targets)
	if len(missing) > 0 {
		return nil, &input.Error{Err: fmt.Errorf("revoke: certificate %s is no longer in the spec", missing[0])}
	}
	return picked, nil
}

// revokeRenew renews the targets whose files still hold the old serial (a
// run killed after the renewal finds the new ones and goes on).
func (r *runner) revokeRenew(ctx context.Context, j *RevokeJournal, o RevokeOptions, _ *RevokeResult) error {
	ts, err := r.revokeTargets(j)
	if err != nil {
		return err
	}
	var due []pki.Target
	for _, t := range ts {
		serial, err := diskSerial(t)
		if err != nil {
			return err
		}
		if serial == j.Old[t.ID] {
			due = append(due, t)
		}
	}
	if len(due) > 0 {
		opts := issue.RenewOptions{Options: issue.Options{Out: io.Discard, Now: r.o.Now, LockHeld: true}}
		renewed, err := issue.Renew(ctx, r.o.Spec, due, opts)
		if err != nil {
			return fmt.Errorf("renew: %w", err)
		}
		for _, rn := range renewed {
			r.log.printf("[renew] %s: serial %s -> %s (new key); the old pair is kept in %s", rn.Target.ID, pki.ShortSerial(rn.OldSerial), pki.ShortSerial(rn.NewSerial), rn.Backup)
		}
	}
	return nil
}

// revokeProveNew deploys the replacements and proves them in effect:
// nodes as rotate proves renewed leaves, clients with a linearizable read
// on every client port.
func (r *runner) revokeProveNew(ctx context.Context, j *RevokeJournal, _ RevokeOptions, _ *RevokeResult) error {
	ts, err := r.revokeTargets(j)
	if err != nil {
		return err
	}
	h, err := r.etcd.health(ctx)
	if err != nil {
		return err
	}
	if err := healthyOrError(r.o.Spec, h, "refusing to revoke before the replacement is proven"); err != nil {
		return err
	}
	p, err := revokePlan(r.o.Spec, ts)
	if err != nil {
		return err
	}
	if err := r.deployNodes(ctx, p.Nodes); err != nil {
		return err
	}
	res := &Result{}
	if err := r.prove(ctx, p, res, h.Leader); err != nil {
		return err
	}
	for _, cp := range p.Clients {
		if err := r.updateClient(ctx, cp, false, true); err != nil {
			return err
		}
	}
	return nil
}

// revokePlan is the rotation plan that puts the targets' replacements in
// effect without a restart.
func revokePlan(s *cluster.Spec, ts []pki.Target) (*Plan, error) {
	inv := pki.New(s)
	p := &Plan{}
	for _, t := range ts {
		if n, ok := s.Node(t.Owner); ok {
			np := p.node(n.Name)
			if np == nil {
				np = &NodePlan{Node: n, Prove: true}
				p.Nodes = append(p.Nodes, np)
				for _, a := range inv.Targets {
					if a.Owner == n.Name {
						np.All = append(np.All, a)
					}
				}
			}
			np.Targets = append(np.Targets, t)
			continue
		}
		if c, ok := s.Client(t.Owner); ok {
			p.Clients = append(p.Clients, &ClientPlan{Client: c, Target: t})
		}
	}
	return p, renderCommands(s, inv.Paths, p)
}

// renderCommands fills in the deploy and restart commands of a plan.
func renderCommands(s *cluster.Spec, paths pki.Paths, p *Plan) error {
	var err error
	for _, np := range p.Nodes {
		data := cluster.TemplateData{Name: np.Node.Name, IP: np.Node.IP().String(), Bundle: paths.NodeDir(np.Node.Name),
			Dir: np.Node.Dir, ConfigFile: paths.NodeConfig(np.Node.Name), DataDir: np.Node.DataDir}
		if np.DeployCmd, err = cluster.RenderTemplate(np.Node.Deploy, data); err != nil {
			return &input.Error{Err: fmt.Errorf("node %s deploy template: %w", np.Node.Name, err)}
		}
	}
	for _, cp := range p.Clients {
		data := cluster.TemplateData{Name: cp.Client.Name, Bundle: cp.Target.Dir, Dir: cp.Client.Dir}
		if cp.DeployCmd, err = cluster.RenderTemplate(cp.Client.Deploy, data); err != nil {
			return &input.Error{Err: fmt.Errorf("client %s deploy template: %w", cp.Client.Name, err)}
		}
	}
	return nil
}

// revokePublish writes the CRL with the old serials into the PKI
// directory and every node bundle.
func (r *runner) revokePublish(ctx context.Context, j *RevokeJournal, _ RevokeOptions, res *RevokeResult) error {
	res.published = time.Now()
	var add []pki.Revoked
	for _, id := range j.Targets {
		add = append(add, pki.Revoked{Name: id, Serial: j.Old[id], Reason: j.Reason, When: j.Started})
	}
	for _, s := range j.Serials {
		add = append(add, pki.Revoked{Serial: s, Reason: j.Reason, When: j.Started})
	}
	out, err := issue.RevokeSerials(ctx, r.o.Spec, add, issue.Options{Now: r.o.Now, LockHeld: true})
	if err != nil {
		return fmt.Errorf("publish the CRL: %w", err)
	}
	res.Revoked = out.Added
	r.log.printf("[crl] published CRL number %v with %d revoked serials (new: %s) in %s and every node bundle; next update %s",
		out.CRL.Number, len(out.CRL.Revoked), strings.Join(serialsOf(add), ", "), pki.Paths{PKI: r.o.Spec.PKIDir}.CRL(), out.CRL.NextUpdate.UTC().Format(time.RFC3339))
	return nil
}

func serialsOf(rs []pki.Revoked) []string {
	var out []string
	for _, r := range rs {
		out = append(out, pki.ShortSerial(r.Serial))
	}
	return out
}

// revokeDeploy runs every node's deploy command: the CRL changed in every
// bundle.
func (r *runner) revokeDeploy(ctx context.Context, _ *RevokeJournal, _ RevokeOptions, _ *RevokeResult) error {
	p := &Plan{}
	for _, n := range r.o.Spec.Nodes {
		p.Nodes = append(p.Nodes, &NodePlan{Node: n})
	}
	if err := renderCommands(r.o.Spec, pki.Paths{PKI: r.o.Spec.PKIDir}, p); err != nil {
		return err
	}
	return r.deployNodes(ctx, p.Nodes)
}

// revokeRefused presents each revoked certificate (the old pair from the
// backup, or a probe certificate with its serial when the key is not at
// hand) on every member's client and peer port, with a control
// certificate that must be accepted, and records the replacements.
func (r *runner) revokeRefused(ctx context.Context, j *RevokeJournal, o RevokeOptions, res *RevokeResult) error {
	s := r.o.Spec
	authority, roots, err := probeAuthority(s)
	if err != nil {
		return err
	}
	ports, err := r.etcd.ports()
	if err != nil {
		return err
	}
	control, err := authority.ProbeClient(time.Hour, time.Now())
	if err != nil {
		return err
	}
	type item struct{ name, serial string }
	var items []item
	for _, id := range j.Targets {
		items = append(items, item{id, j.Old[id]})
	}
	for _, serial := range j.Serials {
		items = append(items, item{"serial " + pki.ShortSerial(serial), serial})
	}
	pool := rootsPool(roots)
	for _, it := range items {
		pair, how, err := revokedPair(s.PKIDir, it.serial, authority)
		if err != nil {
			return err
		}
		vs, took, err := waitRefused(ctx, ports, pool, pair, control, o.RefuseTimeout)
		res.Verdicts = append(res.Verdicts, vs...)
		res.Refused = max(res.Refused, took)
		if err != nil {
			what := it.name
			if !strings.HasPrefix(what, "serial ") {
				what += " (serial " + pki.ShortSerial(it.serial) + ")"
			}
			return fmt.Errorf("%s is revoked in the CRL but not refused everywhere: %w", what, err)
		}
		byMember := map[string][]string{}
		var order []string
		for _, v := range vs {
			if _, ok := byMember[v.Member]; !ok {
				order = append(order, v.Member)
			}
			byMember[v.Member] = append(byMember[v.Member], fmt.Sprintf("%s refused it (%s)", v.Port, v.Revoked.How))
		}
		for _, m := range order {
			r.log.printf("%s: %s: %s; a fresh certificate of the same CA accepted", m, it.name, strings.Join(byMember[m], ", "))
		}
		label := it.name
		if !strings.HasPrefix(label, "serial ") {
			label += ": serial " + pki.ShortSerial(it.serial)
		}
		r.log.printf("%s refused on every client and peer port (%s, presenting %s), %d ms after the checks began; no member restarted",
			label, plural(len(ports), "port"), how, took.Milliseconds())
	}
	if !res.published.IsZero() {
		res.Effect = time.Since(res.published)
	}
	if r.st.Replaced == nil {
		r.st.Replaced = map[string]string{}
	}
	ts, err := r.revokeTargets(j)
	if err != nil {
		return err
	}
	for _, t := range ts {
		serial, err := diskSerial(t)
		if err != nil {
			return err
		}
		r.st.Replaced[t.ID] = serial
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
