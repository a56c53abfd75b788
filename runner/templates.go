package runner

import (
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// NodeCommands renders a node's deploy and restart templates, with the
// values every plan (rotation, recovery, CA rotation) gives them.
func NodeCommands(paths pki.Paths, n cluster.Node) (deploy, restart string, err error) {
	data := cluster.TemplateData{Name: n.Name, IP: n.IP().String(), Bundle: paths.NodeDir(n.Name),
		Dir: n.Dir, ConfigFile: paths.NodeConfig(n.Name), DataDir: n.DataDir}
	return renderCommands("node "+n.Name, n.Deploy, n.Restart, data)
}

// ClientCommands renders a client's deploy and restart templates; bundle
// is the client's bundle directory in the PKI.
func ClientCommands(c cluster.Client, bundle string) (deploy, restart string, err error) {
	return renderCommands("client "+c.Name, c.Deploy, c.Restart, cluster.TemplateData{Name: c.Name, Bundle: bundle, Dir: c.Dir})
}

// renderCommands renders a deploy and a restart template; a template that
// does not render is an input error naming whose it is.
func renderCommands(who, deployTmpl, restartTmpl string, data cluster.TemplateData) (deploy, restart string, err error) {
	if deploy, err = cluster.RenderTemplate(deployTmpl, data); err != nil {
		return "", "", input.Errorf("%s deploy template: %w", who, err)
	}
	if restart, err = cluster.RenderTemplate(restartTmpl, data); err != nil {
		return "", "", input.Errorf("%s restart template: %w", who, err)
	}
	return deploy, restart, nil
}
