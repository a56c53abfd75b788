package runner

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

// BackupDir is the run's backup directory: each Renewed.Backup is it
// joined with the store's path below the PKI directory.
func BackupDir(pki string, rs []issue.Renewed) string {
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

// DeployNodes runs each node's deploy command in order, stopping at the
// first failure. A deploy, once started, runs to its end (bounded by
// --command-timeout): a cancelled context stops the run between nodes.
func (r *Runner) DeployNodes(ctx context.Context, nodes []*NodePlan) error {
	for _, np := range nodes {
		if np.DeployCmd == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "deploying to " + np.Node.Name}
		}
		// The CRL its etcd.env names is parsed back before it leaves:
		// a member that cannot read it refuses every connection.
		if prob := r.Inv.Paths.BundleCRLProblem(np.Node.Name); prob != "" {
			return &MemberError{Member: np.Node.Name, Err: fmt.Errorf("not deployed: %s", prob)}
		}
		t0 := time.Now()
		if err := RunCommand(context.WithoutCancel(ctx), "deploy to node "+np.Node.Name, np.DeployCmd, r.Cfg.CommandTimeout); err != nil {
			return &MemberError{Member: np.Node.Name, Err: err}
		}
		took := time.Since(t0)
		r.Log.Step(StepDeploy, np.Node.Name).Took(took).Done("%s: deployed in %s", np.Node.Name, Round(took))
	}
	return nil
}

// NodeTargets are the certificates node owns, in inventory order.
func NodeTargets(ts []pki.Target, node string) []pki.Target {
	var out []pki.Target
	for _, t := range ts {
		if t.Owner == node {
			out = append(out, t)
		}
	}
	return out
}

// ServingSerials reads a node's certificates' serials on disk, by ID,
// and the two its member serves: the server certificate's on the client
// port and the peer certificate's on the peer port.
func ServingSerials(ts []pki.Target) (all map[string]string, server, peer string, err error) {
	if all, err = DiskSerials(ts); err != nil {
		return nil, "", "", err
	}
	serverT, _ := targetOf(ts, ca.KindServer.Name)
	peerT, _ := targetOf(ts, ca.KindPeer.Name)
	return all, all[serverT.ID], all[peerT.ID], nil
}

// DiskSerials reads the targets' current serials, by ID.
func DiskSerials(ts []pki.Target) (map[string]string, error) {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		serial, err := DiskSerial(t)
		if err != nil {
			return nil, err
		}
		m[t.ID] = serial
	}
	return m, nil
}

// DiskSerial is the serial of t's certificate on disk.
func DiskSerial(t pki.Target) (string, error) {
	c, err := ReadCert(t.CertPath())
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

// UpdateClient deploys a client's renewed files, runs its restart
// command when restart is set, shows the members accept its certificate
// when prove is set, then records the certificate in effect.
func (r *Runner) UpdateClient(ctx context.Context, cp *ClientPlan, restart, prove bool) error {
	did := []string{}
	if cp.DeployCmd != "" {
		if err := RunCommand(ctx, "deploy to client "+cp.Client.Name, cp.DeployCmd, r.Cfg.CommandTimeout); err != nil {
			return err
		}
		did = append(did, "deployed")
	}
	if restart && cp.RestartCmd != "" {
		if err := RunCommand(ctx, "restart client "+cp.Client.Name, cp.RestartCmd, r.Cfg.CommandTimeout); err != nil {
			return err
		}
		did = append(did, "restarted")
	}
	if len(did) == 0 {
		did = append(did, "new pair in place")
		if !r.Inv.Spec.Local {
			did[0] += fmt.Sprintf(" (no deploy command: copy %s to its hosts)", cp.Target.Dir)
		}
	}
	serial, err := DiskSerial(cp.Target)
	if err != nil {
		return err
	}
	if prove {
		took, err := r.Etcd.ProveClient(ctx, cp, serial)
		if err != nil {
			return err
		}
		did = append(did, fmt.Sprintf("accepted with a linearizable read on every client port (%d ms)", took.Milliseconds()))
	}
	r.Journal.InEffect[cp.Target.ID] = serial
	if err := r.Journal.Save(r.Inv.Spec.PKIDir, r.Cfg.Now()); err != nil {
		return err
	}
	r.Log.Step(StepClient, cp.Target.ID).Serial(serial).Done("client %s: %s, serial %s", cp.Client.Name, joinWords(did), pki.ShortSerial(serial))
	return nil
}
