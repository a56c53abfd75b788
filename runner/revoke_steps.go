package runner

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// revokeRenew renews the targets whose files still hold the old serial (a
// run killed after the renewal finds the new ones and goes on).
func (r *Runner) revokeRenew(ctx context.Context, j *RevokeJournal, o RevokeRequest, _ *RevokeResult) error {
	ts := r.revokeTargets(j)
	var due []pki.Target
	for _, t := range ts {
		serial, err := DiskSerial(t)
		if err != nil {
			return err
		}
		if serial == j.Old[t.ID] {
			due = append(due, t)
		}
	}
	if len(due) > 0 {
		opts := issue.RenewOptions{Options: issue.Options{Out: io.Discard, Now: r.Cfg.Now, LockHeld: true}}
		renewed, err := issue.Renew(ctx, r.Inv, due, opts)
		if err != nil {
			return fmt.Errorf("renew: %w", err)
		}
		for _, rn := range renewed {
			r.Log.Report(Event{Step: StepRenew, Target: rn.Target.ID, Serial: rn.NewSerial, Outcome: OutcomeDone,
				Message: fmt.Sprintf("[renew] %s: serial %s -> %s (new key); the old pair is kept in %s", rn.Target.ID, pki.ShortSerial(rn.OldSerial), pki.ShortSerial(rn.NewSerial), rn.Backup)})
		}
	}
	return nil
}

// revokeProveNew deploys the replacements and proves them in effect:
// nodes as rotate proves renewed leaves, clients with a linearizable read
// on every client port.
func (r *Runner) revokeProveNew(ctx context.Context, j *RevokeJournal, _ RevokeRequest, _ *RevokeResult) error {
	ts := r.revokeTargets(j)
	if len(ts) == 0 {
		return nil
	}
	h, err := r.Etcd.Health(ctx)
	if err != nil {
		return err
	}
	if err := HealthyOrError(r.Inv.Spec, h, "refusing to revoke before the replacement is proven"); err != nil {
		return err
	}
	p, err := revokePlan(r.Inv, ts)
	if err != nil {
		return err
	}
	if err := r.DeployNodes(ctx, p.Nodes); err != nil {
		return err
	}
	res := &Tally{}
	if err := r.ProveNodes(ctx, p, res, h.Leader); err != nil {
		return err
	}
	for _, cp := range p.Clients {
		if err := r.UpdateClient(ctx, cp, false, true); err != nil {
			return err
		}
	}
	return nil
}

// revokePlan is the rotation plan that puts the targets' replacements in
// effect without a restart.
func revokePlan(inv *pki.Inventory, ts []pki.Target) (*Rollout, error) {
	s := inv.Spec
	p := &Rollout{}
	for _, t := range ts {
		if n, ok := s.Node(t.Owner); ok {
			np := p.Node(n.Name)
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
	return p, DeployCommands(inv.Paths, p)
}

// DeployCommands fills in the deploy commands of a revocation's plan; it
// restarts nothing.
func DeployCommands(paths pki.Paths, p *Rollout) error {
	var err error
	for _, np := range p.Nodes {
		if np.DeployCmd, _, err = NodeCommands(paths, np.Node); err != nil {
			return err
		}
	}
	for _, cp := range p.Clients {
		if cp.DeployCmd, _, err = ClientCommands(cp.Client, cp.Target.Dir); err != nil {
			return err
		}
	}
	return nil
}

// revokePublish writes the CRL with the old serials into the PKI
// directory and every node bundle.
func (r *Runner) revokePublish(ctx context.Context, j *RevokeJournal, _ RevokeRequest, res *RevokeResult) error {
	res.published = time.Now()
	add := j.Entries
	if len(add) == 0 {
		// A journal from before the entries were journaled.
		for _, id := range j.Targets {
			add = append(add, pki.Revoked{Name: id, Serial: j.Old[id], Reason: j.Reason, When: j.Started})
		}
		for _, s := range j.Serials {
			add = append(add, pki.Revoked{Serial: s, Reason: j.Reason, When: j.Started})
		}
	}
	out, err := issue.RevokeSerials(ctx, r.Inv, add, issue.Options{Now: r.Cfg.Now, LockHeld: true})
	if err != nil {
		return fmt.Errorf("publish the CRL: %w", err)
	}
	res.Revoked = out.Added
	r.Log.Report(Event{Step: StepPublish, Target: strings.Join(serialsOf(out.Added), ", "), Outcome: OutcomeDone,
		Message: fmt.Sprintf("[crl] published CRL number %v with %d revoked serials (new: %s) in %s and every node bundle; next update %s",
			out.CRL.Number, len(out.CRL.Revoked), strings.Join(serialsOf(out.Added), ", "), r.Inv.Paths.CRL(), out.CRL.NextUpdate.UTC().Format(time.RFC3339))})
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
func (r *Runner) revokeDeploy(ctx context.Context, _ *RevokeJournal, _ RevokeRequest, _ *RevokeResult) error {
	p := &Rollout{}
	for _, n := range r.Inv.Spec.Nodes {
		p.Nodes = append(p.Nodes, &NodePlan{Node: n})
	}
	if err := DeployCommands(r.Inv.Paths, p); err != nil {
		return err
	}
	return r.DeployNodes(ctx, p.Nodes)
}

// revokeRefused presents each revoked certificate (the old pair from the
// backup, or a probe certificate with its serial when the key is not at
// hand) on every member's client and peer port, with a control
// certificate, its twin, that must be accepted, and records the
// replacements.
func (r *Runner) revokeRefused(ctx context.Context, j *RevokeJournal, o RevokeRequest, res *RevokeResult) error {
	authority, roots, err := probeAuthority(r.Inv)
	if err != nil {
		return err
	}
	ports, err := r.Etcd.ports()
	if err != nil {
		return err
	}
	items, err := r.proofItems(j, authority)
	if err != nil {
		return err
	}
	provePresented(ctx, items, ports, rootsPool(roots), authority, o.RefuseTimeout)
	for _, it := range items {
		res.Verdicts = append(res.Verdicts, it.vs...)
		res.Refused = max(res.Refused, it.took)
		if it.err != nil {
			what := it.name
			if !strings.HasPrefix(what, "serial ") {
				what += " (serial " + pki.ShortSerial(it.serial) + ")"
			}
			return fmt.Errorf("%s is revoked in the CRL but not refused everywhere: %w", what, it.err)
		}
		r.logRefused(it, len(ports))
	}
	if !res.published.IsZero() {
		res.Effect = time.Since(res.published)
	}
	if r.Journal.Replaced == nil {
		r.Journal.Replaced = map[string]string{}
	}
	for _, t := range r.revokeTargets(j) {
		serial, err := DiskSerial(t)
		if err != nil {
			return err
		}
		r.Journal.Replaced[t.ID] = serial
	}
	return nil
}

// proofItem is one revoked certificate to present, with its control,
// and what its proof showed.
type proofItem struct {
	name, serial string
	presented
	vs   []PortVerdict
	took time.Duration
	err  error
}

// proofItems are the journal's revoked certificates, each with the pair
// that is presented for it (found in one walk of the PKI directory).
func (r *Runner) proofItems(j *RevokeJournal, authority *ca.CA) ([]*proofItem, error) {
	var items []*proofItem
	for _, id := range j.Targets {
		items = append(items, &proofItem{name: id, serial: j.Old[id]})
	}
	for _, serial := range j.Serials {
		items = append(items, &proofItem{name: "serial " + pki.ShortSerial(serial), serial: serial})
	}
	idx, err := indexSerials(r.Inv.Spec.PKIDir)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it.presented, err = idx.revokedPair(r.Inv.Spec.PKIDir, it.serial, authority); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// proofParallel bounds how many revoked certificates are presented at
// once, each on every port with a control: a revoke of many serials is
// one proof, not one after the other, without opening hundreds of
// handshakes on the members at a time.
const proofParallel = 4

// provePresented runs every item's proof (waitRefused), proofParallel at
// a time.
func provePresented(ctx context.Context, items []*proofItem, ports []memberPort, pool *x509.CertPool, authority *ca.CA, timeout time.Duration) {
	sem := make(chan struct{}, proofParallel)
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			waitRefused(ctx, ports, pool, authority, it, timeout)
		})
	}
	wg.Wait()
}

// logRefused says, member by member, that it refused it.
func (r *Runner) logRefused(it *proofItem, ports int) {
	byMember := map[string][]string{}
	var order []string
	for _, v := range it.vs {
		if _, ok := byMember[v.Member]; !ok {
			order = append(order, v.Member)
		}
		byMember[v.Member] = append(byMember[v.Member], fmt.Sprintf("%s refused it (%s)", v.Port, v.Revoked.How))
	}
	for _, m := range order {
		r.Log.Step(StepRefused, m).Serial(it.serial).Info("%s: %s: %s; its twin (another serial) accepted", m, it.name, strings.Join(byMember[m], ", "))
	}
	label := it.name
	if !strings.HasPrefix(label, "serial ") {
		label += ": serial " + pki.ShortSerial(it.serial)
	}
	r.Log.Report(Event{Step: StepRefused, Target: label, Serial: it.serial, Outcome: OutcomeDone, Duration: it.took,
		Message: fmt.Sprintf("%s refused on every client and peer port (%s, presenting %s), %d ms after the checks began; no member restarted",
			label, plural(ports, "port"), it.how, it.took.Milliseconds())})
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
