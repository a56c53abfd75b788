package rotate

// The steps of a run that change something: renew the due pairs, deploy
// the bundles, update the clients; and the serials on disk they are
// proven against.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

func (r *runner) renew(ctx context.Context, p *Plan, res *Result) error {
	if len(p.Due)+len(p.Missing) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return &InterruptedError{Step: "renewing"}
	}
	var due, missing []pki.Target
	for _, d := range p.Due {
		due = append(due, *d.Target)
	}
	for _, m := range p.Missing {
		missing = append(missing, *m.Target)
	}
	// run holds the PKI directory's lock already.
	opts := issue.Options{Out: r.log, Now: r.o.Now, LockHeld: true}
	if len(due) > 0 {
		renewed, err := issue.Renew(context.WithoutCancel(ctx), r.inv, due, issue.RenewOptions{Options: opts})
		if err != nil {
			return fmt.Errorf("renew: %w", err)
		}
		res.Renewed = renewed
		r.log.printf("renewed %d certificates; previous pairs in %s", len(renewed), backupDir(r.o.Spec.PKIDir, renewed))
	}
	if len(missing) > 0 {
		// Init, not Renew: a node new to the spec needs its etcd.conf.yml
		// too. Init reuses everything that exists, but it would create a
		// CA, and rotate never does.
		if _, err := pki.LoadCA(r.inv.Paths); err != nil {
			return fmt.Errorf("issue missing certificates: %w", err)
		}
		if _, err := issue.Init(context.WithoutCancel(ctx), r.inv, opts); err != nil {
			return fmt.Errorf("issue missing certificates: %w", err)
		}
		r.log.printf("issued %d missing certificates: %s", len(missing), strings.Join(pki.IDs(missing), ", "))
		return r.inEffect(missing)
	}
	return nil
}

// backupDir is the run's backup directory: each Renewed.Backup is it
// joined with the store's path below the PKI directory.
func backupDir(pki string, rs []issue.Renewed) string {
	for _, r := range rs {
		if r.Backup == "" {
			continue
		}
		if rel, err := filepath.Rel(pki, r.Target.Dir); err == nil {
			return strings.TrimSuffix(r.Backup, string(filepath.Separator)+rel)
		}
	}
	return "(none: nothing was replaced)"
}

// deploy runs each changed node's deploy command. Nodes neither restarted
// nor proven (--restart=never --no-verify, or a healthcheck client
// renewed under --restart=always) are in effect once deployed.
func (r *runner) deploy(ctx context.Context, p *Plan) error {
	if err := r.deployNodes(ctx, p.Nodes); err != nil {
		return err
	}
	for _, np := range p.Nodes {
		if !np.Restart && !np.Prove {
			if err := r.inEffect(np.Targets); err != nil {
				return err
			}
		}
	}
	return nil
}

// deployNodes runs each node's deploy command in order, stopping at the
// first failure. A deploy, once started, runs to its end (bounded by
// --command-timeout): a cancelled context stops the run between nodes.
func (r *runner) deployNodes(ctx context.Context, nodes []*NodePlan) error {
	for _, np := range nodes {
		if np.DeployCmd == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "deploying to " + np.Node.Name}
		}
		// The CRL its etcd.env names is parsed back before it leaves:
		// a member that cannot read it refuses every connection.
		if prob := r.inv.Paths.BundleCRLProblem(np.Node.Name); prob != "" {
			return &MemberError{Member: np.Node.Name, Err: fmt.Errorf("not deployed: %s", prob)}
		}
		t0 := time.Now()
		if err := runCommand(context.WithoutCancel(ctx), "deploy to node "+np.Node.Name, np.DeployCmd, r.o.CommandTimeout); err != nil {
			return &MemberError{Member: np.Node.Name, Err: err}
		}
		r.log.printf("%s: deployed in %s", np.Node.Name, round(time.Since(t0)))
	}
	return nil
}

// inEffect records the targets' current serials in the journal.
func (r *runner) inEffect(ts []pki.Target) error {
	for _, t := range ts {
		serial, err := diskSerial(t)
		if err != nil {
			return err
		}
		r.st.InEffect[t.ID] = serial
	}
	return r.st.save(r.o.Spec.PKIDir, r.o.Now())
}

// nodeTargets are the certificates node owns, in inventory order.
func nodeTargets(ts []pki.Target, node string) []pki.Target {
	var out []pki.Target
	for _, t := range ts {
		if t.Owner == node {
			out = append(out, t)
		}
	}
	return out
}

// servingSerials reads a node's certificates' serials on disk, by ID,
// and the two its member serves: the server certificate's on the client
// port and the peer certificate's on the peer port.
func servingSerials(ts []pki.Target) (all map[string]string, server, peer string, err error) {
	if all, err = diskSerials(ts); err != nil {
		return nil, "", "", err
	}
	serverT, _ := targetOf(ts, ca.KindServer.Name)
	peerT, _ := targetOf(ts, ca.KindPeer.Name)
	return all, all[serverT.ID], all[peerT.ID], nil
}

// diskSerials reads the targets' current serials, by ID.
func diskSerials(ts []pki.Target) (map[string]string, error) {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		serial, err := diskSerial(t)
		if err != nil {
			return nil, err
		}
		m[t.ID] = serial
	}
	return m, nil
}

func diskSerial(t pki.Target) (string, error) {
	c, err := readCert(t.CertPath())
	if err != nil {
		return "", fmt.Errorf("certificate %s: %w", t.ID, err)
	}
	return certx.Serial(c), nil
}

func targetOf(ts []pki.Target, kind string) (pki.Target, bool) {
	for _, t := range ts {
		if t.Kind.Name == kind {
			return t, true
		}
	}
	return pki.Target{}, false
}

// clients deploys and restarts clients whose certificate changed.
func (r *runner) clients(ctx context.Context, p *Plan) error {
	for _, cp := range p.Clients {
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "updating client " + cp.Client.Name}
		}
		// A client loads a renewed pair at its next handshake too (the
		// apiserver's etcd client is built from the same TLSInfo as etcd);
		// what can be proven from here is that etcd accepts it.
		if err := r.updateClient(context.WithoutCancel(ctx), cp, r.o.Restart == RestartAlways, r.proving()); err != nil {
			return err
		}
	}
	return nil
}

// updateClient deploys a client's renewed files, runs its restart
// command when restart is set, shows the members accept its certificate
// when prove is set, then records the certificate in effect.
func (r *runner) updateClient(ctx context.Context, cp *ClientPlan, restart, prove bool) error {
	did := []string{}
	if cp.DeployCmd != "" {
		if err := runCommand(ctx, "deploy to client "+cp.Client.Name, cp.DeployCmd, r.o.CommandTimeout); err != nil {
			return err
		}
		did = append(did, "deployed")
	}
	if restart && cp.RestartCmd != "" {
		if err := runCommand(ctx, "restart client "+cp.Client.Name, cp.RestartCmd, r.o.CommandTimeout); err != nil {
			return err
		}
		did = append(did, "restarted")
	}
	if len(did) == 0 {
		did = append(did, "new pair in place")
		if !r.o.Spec.Local {
			did[0] += fmt.Sprintf(" (no deploy command: copy %s to its hosts)", cp.Target.Dir)
		}
	}
	serial, err := diskSerial(cp.Target)
	if err != nil {
		return err
	}
	if prove {
		took, err := r.etcd.proveClient(ctx, cp, serial)
		if err != nil {
			return err
		}
		did = append(did, fmt.Sprintf("accepted with a linearizable read on every client port (%d ms)", took.Milliseconds()))
	}
	r.st.InEffect[cp.Target.ID] = serial
	if err := r.st.save(r.o.Spec.PKIDir, r.o.Now()); err != nil {
		return err
	}
	r.log.printf("client %s: %s, serial %s", cp.Client.Name, joinWords(did), pki.ShortSerial(serial))
	return nil
}
