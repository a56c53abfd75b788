package main

import (
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/request"
	"github.com/etcdpki/etcdpki/runner"
)

// caRequestFlags are ca rotate's flags for a rotation through the
// controller (--kubeconfig).
func caRequestFlags() []cli.Flag {
	return append(apiFlags(),
		clusterFlag(),
		&cli.StringFlag{Name: "id", Usage: "with --kubeconfig: the rotation's `ID` (spec.ca.rotation.id; default: the time)"},
		&cli.DurationFlag{Name: "timeout", Value: request.DefaultCATimeout, Usage: "with --kubeconfig: how long to wait for the rotation to be done"},
	)
}

var caRequestOnly = []string{"namespace", "cluster", "id", "timeout"}

// runCARotateRequest is ca rotate --kubeconfig: set spec.ca.rotation on
// the EtcdCluster and follow the controller's stages until done.
func runCARotateRequest(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if name != "kubeconfig" && !slices.Contains(caRequestOnly, name) && c.IsSet(name) {
			return input.Errorf("--%s works on a PKI directory: it does not go with --kubeconfig, which asks the controller for the rotation (use one or the other)", name)
		}
	}
	if err := noArgs(c); err != nil {
		return err
	}
	if id := c.String("id"); id != "" {
		if err := checkName("--id", id); err != nil {
			return err
		}
	}
	cl, ns, name, err := clusterClient(c)
	if err != nil {
		return err
	}
	_, err = request.RunCARotation(c.Context, request.CAOptions{
		Client: cl, Namespace: ns, Cluster: name, ID: c.String("id"), Timeout: c.Duration("timeout"),
		Log: runner.NewReportLogger(runner.TextReporter(c.App.Writer), "ca rotate"),
	})
	return err
}

// caPKIOnly refuses the request flags without --kubeconfig.
func caPKIOnly(c *cli.Context) error {
	for _, f := range caRequestOnly {
		if c.IsSet(f) {
			return input.Errorf("--%s applies only with --kubeconfig (a CA rotation through the controller)", f)
		}
	}
	return nil
}
