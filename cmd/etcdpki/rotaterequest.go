package main

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/request"
	"github.com/etcdpki/etcdpki/runner"
)

// requestFlags are rotate's flags for a renewal through the agents
// (--kubeconfig): the API's, the EtcdCluster, what to renew, how long to
// wait.
func requestFlags() []cli.Flag {
	return append(apiFlags(),
		clusterFlag(),
		&cli.BoolFlag{Name: "all", Usage: "with --kubeconfig: request the renewal of every certificate"},
		&cli.DurationFlag{Name: "timeout", Value: request.DefaultTimeout, Usage: "with --kubeconfig: how long to wait for every requested certificate to be in effect"},
	)
}

// requestOnly names the flags that only mean something with --kubeconfig.
var requestOnly = []string{"namespace", "cluster", "all", "timeout"}

// pkiOnly refuses rotate's request flags without --kubeconfig: a
// --cluster or --all silently ignored would run a rotation of the PKI
// directory the operator did not ask for.
func pkiOnly(c *cli.Context) error {
	for _, f := range requestOnly {
		if c.IsSet(f) {
			return input.Errorf("--%s applies only with --kubeconfig (a renewal through the agents)", f)
		}
	}
	return nil
}

// runRequest is rotate --kubeconfig: stamp a renewal request on the
// EtcdCluster and wait for the agents to put it into effect.
func runRequest(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if name != "kubeconfig" && !slices.Contains(requestOnly, name) && c.IsSet(name) {
			return input.Errorf("--%s works on a PKI directory: it does not go with --kubeconfig, which asks the agents for the renewal (use one or the other)", name)
		}
	}
	if err := checkArgs(c); err != nil {
		return err
	}
	targets := c.Args().Slice()
	switch {
	case c.Bool("all") && len(targets) > 0:
		return input.Errorf("rotate --kubeconfig: give TARGETs or --all, not both")
	case !c.Bool("all") && len(targets) == 0:
		return input.Errorf("rotate --kubeconfig: name the certificates to renew (an ID, a node or client, a kind), or --all")
	}
	if err := checkTargets("rotate --kubeconfig: TARGET", targets); err != nil {
		return err
	}
	cl, ns, name, err := clusterClient(c)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		targets = nil
	}
	_, err = request.Run(c.Context, request.Options{
		Client: cl, Namespace: ns, Cluster: name, Targets: targets,
		Timeout: c.Duration("timeout"), Expand: inventory,
		Log: runner.NewReportLogger(runner.TextReporter(c.App.Writer), "rotate"),
	})
	return err
}
