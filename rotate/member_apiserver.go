package rotate

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
)

// updateAPIServer runs the kube-apiserver client's deploy and restart
// templates: its --etcd-servers changed.
func (m *memberRun) updateAPIServer(ctx context.Context) error {
	c, ok := m.o.Spec.Client(cluster.ClientAPIServer)
	if !ok {
		return nil
	}
	data := cluster.TemplateData{Name: c.Name, Bundle: m.etcd.paths.APIServerDir(), Dir: c.Dir}
	var did []string
	for _, t := range []struct{ what, tmpl string }{{"deploy", c.Deploy}, {"restart", c.Restart}} {
		cmd, err := cluster.RenderTemplate(t.tmpl, data)
		if err != nil {
			return &input.Error{Err: fmt.Errorf("client %s %s template: %w", c.Name, t.what, err)}
		}
		if cmd == "" {
			continue
		}
		if err := runCommand(ctx, t.what+" client "+c.Name, cmd, m.o.CommandTimeout); err != nil {
			return err
		}
		did = append(did, t.what)
	}
	flags, _ := os.ReadFile(m.etcd.paths.APIServerFlags())
	first, _, _ := strings.Cut(string(flags), "\n")
	switch {
	case len(did) > 0:
	case m.o.Spec.Local:
		did = []string{"files rewritten in place"}
	default:
		did = []string{"no deploy or restart template: copy " + m.etcd.paths.APIServerDir() + " to the apiserver hosts"}
	}
	m.log.printf("[apiserver] %s (%s)", strings.Join(did, ", "), first)
	return nil
}

// deployOthers runs the deploy template of every node but skip.
func (m *memberRun) deployOthers(ctx context.Context, skip string) error {
	p := &Plan{}
	for _, n := range m.o.Spec.Nodes {
		if n.Name != skip {
			p.Nodes = append(p.Nodes, &NodePlan{Node: n})
		}
	}
	if err := renderCommands(m.o.Spec, m.etcd.paths, p); err != nil {
		return err
	}
	return m.deployNodes(ctx, p.Nodes)
}
