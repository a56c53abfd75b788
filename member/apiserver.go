package member

import (
	"context"
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/runner"
)

// updateAPIServer runs the kube-apiserver client's deploy and restart
// templates: its --etcd-servers changed.
func (m *memberRun) updateAPIServer(ctx context.Context) error {
	c, ok := m.Inv.Spec.Client(cluster.ClientAPIServer)
	if !ok {
		return nil
	}
	b, _ := m.Inv.Bundle(c.Name)
	deploy, restart, err := runner.ClientCommands(c, b.Root)
	if err != nil {
		return err
	}
	var did []string
	for _, t := range []struct{ what, cmd string }{{"deploy", deploy}, {"restart", restart}} {
		if t.cmd == "" {
			continue
		}
		if err := runner.RunCommand(ctx, t.what+" client "+c.Name, t.cmd, m.Cfg.CommandTimeout); err != nil {
			return err
		}
		did = append(did, t.what)
	}
	flags, _ := regular.ReadFile(m.Inv.Paths.APIServerFlags(), regular.MaxState)
	first, _, _ := strings.Cut(string(flags), "\n")
	switch {
	case len(did) > 0:
	case m.Inv.Spec.Local:
		did = []string{"files rewritten in place"}
	default:
		did = []string{"no deploy or restart template: copy " + m.Inv.Paths.APIServerDir() + " to the apiserver hosts"}
	}
	m.Log.Step(stepAPIServer, m.mo.Name).Done("[apiserver] %s (%s)", strings.Join(did, ", "), first)
	return nil
}

// deployOthers runs the deploy template of every node but skip.
func (m *memberRun) deployOthers(ctx context.Context, skip string) error {
	p := &runner.Rollout{}
	for _, n := range m.Inv.Spec.Nodes {
		if n.Name != skip {
			p.Nodes = append(p.Nodes, &runner.NodePlan{Node: n})
		}
	}
	if err := runner.DeployCommands(m.Inv.Paths, p); err != nil {
		return err
	}
	return m.DeployNodes(ctx, p.Nodes)
}
