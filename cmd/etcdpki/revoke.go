package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/request"
	"github.com/etcdpki/etcdpki/revoke"
	"github.com/etcdpki/etcdpki/runner"
)

func certsRevokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "revoke",
		Usage:     "revoke certificates: replace one in use, publish its serial in the CRL, prove every member refuses it",
		ArgsUsage: "[TARGET...]",
		Description: "TARGET names certificates as in certs renew (NODE/etcd-peer, apiserver-etcd-client,\n" +
			"etcd-admin, or NODE for all of a node's). Each is renewed (new key), deployed and proven in\n" +
			"effect, and only then is its old serial published in the CRL (PKI/etcd/crl.der and every node\n" +
			"bundle's etcd/crl.der); fresh handshakes presenting the revoked certificate then show every\n" +
			"member refusing it on its client and peer port. No member restarts: etcd reads its CRL on every\n" +
			"accepted connection. Members must run from etcd.env (etcd ignores CRLs in --config-file).\n\n" +
			"--serial revokes a serial no longer in use that this CA issued (found in PKI/backup, PKI/issued\n" +
			"or a bundle); --force revokes one that cannot be tied to the CA. A CA's own serial is refused,\n" +
			"--force or not. Repeat --serial to revoke several in one run: one CRL, one deploy, one proof.\n\n" +
			"An entry leaves the CRL a CRL validity after its certificate expired (revoked.json keeps it).\n" +
			"Everything is checked before the journal is written; a run that stops later is finished by\n" +
			"the command it names (certs list and rotate name it too), even once its node left the spec.\n\n" +
			"Reasons: " + pki.ReasonNames() + ".\n" +
			"Exit codes: 0 revoked and proven (or nothing to do), 1 a step failed after the journal (the message\n" +
			"names the command that finishes it), 2 bad input (nothing written).\n\n" +
			"Through the controller on Kubernetes: --kubeconfig adds the entry to the EtcdCluster's\n" +
			"spec.revocations (a TARGET resolves to the serial its status shows in use) and waits until the\n" +
			"status shows it enforced: the agent renewed the certificate in use, the controller published the\n" +
			"CRL, every member refused the serial on its client and peer port.\n\n" +
			"   etcdpki certs revoke --kubeconfig admin.conf --namespace etcd-system --cluster prod --reason keyCompromise etcd-node-1/etcd-peer\n\n" +
			"With --kubeconfig: 0 every serial enforced, 1 --timeout passed (the error says what status shows),\n" +
			"2 bad input (unknown cluster or target, a bad or the CA's serial, unknown reason; nothing changed).",
		Flags: append(append(specFlags(),
			&cli.StringFlag{Name: "reason", Value: "unspecified", Usage: "RFC 5280 reason: " + pki.ReasonNames()},
			&cli.StringSliceFlag{Name: "serial", Usage: "a serial (hex) to revoke that is no longer in use; repeatable"},
			&cli.BoolFlag{Name: "force", Usage: "revoke a --serial not tied to this CA, or a TARGET whose certificate replaced one revoked before"},
			&cli.DurationFlag{Name: "command-timeout", Value: runner.DefaultCommandTimeout, Usage: "bound on one deploy command"},
			&cli.StringFlag{Name: "cluster", Usage: "with --kubeconfig: the EtcdCluster `NAME`"},
			&cli.DurationFlag{Name: "timeout", Value: request.DefaultTimeout, Usage: "with --kubeconfig: how long to wait for every serial to be enforced"},
		), apiFlags()...),
		Action: certsRevoke,
	}
}

func certsRevoke(c *cli.Context) error {
	if c.IsSet("kubeconfig") {
		return revokeRequest(c)
	}
	for _, f := range []string{"namespace", "cluster", "timeout"} {
		if c.IsSet(f) {
			return input.Errorf("certs revoke: --%s applies only with --kubeconfig (a revocation through the controller)", f)
		}
	}
	if err := checkArgs(c); err != nil {
		return err
	}
	if err := checkTargets("certs revoke:", c.Args().Slice()); err != nil {
		return err
	}
	if _, ok := pki.Reasons[c.String("reason")]; !ok {
		return input.Errorf("certs revoke: --reason %q: use one of %s", c.String("reason"), pki.ReasonNames())
	}
	serials := c.StringSlice("serial")
	switch {
	case len(serials) > 0 && c.Args().Len() > 0:
		return input.Errorf("certs revoke: give TARGETs or --serial, not both")
	case len(serials) == 0 && c.Args().Len() == 0:
		return input.Errorf("certs revoke: name the certificates to revoke, or give --serial")
	}
	if c.Duration("command-timeout") <= 0 {
		return input.Errorf("certs revoke: --command-timeout must be positive")
	}
	inv, err := loadInventory(c, true)
	if err != nil {
		return err
	}
	if err := caKeyAgrees(inv); err != nil {
		return err
	}
	var picked []pki.Target
	var gone []string
	if c.Args().Len() > 0 {
		var missing []string
		picked, missing = pki.Select(inv.Targets, c.Args().Slice())
		// A name the spec no longer has may only finish the journaled
		// revoke that names it (its node left the spec since).
		j := runner.PendingRevoke(inv.Spec.PKIDir)
		for _, m := range missing {
			if j == nil || !slices.Contains(j.Targets, m) {
				return input.Errorf("certs revoke: unknown certificate %q (see etcdpki certs list)", m)
			}
			gone = append(gone, m)
		}
	}
	res, err := revoke.Revoke(c.Context, inv, revoke.Options{
		Targets: picked, Gone: gone, Serials: serials, Reason: c.String("reason"), Force: c.Bool("force"),
		Reporter: runner.TextReporter(c.App.Writer), CommandTimeout: c.Duration("command-timeout"),
	})
	if err != nil {
		return err
	}
	if res.Unchanged {
		fmt.Fprintln(c.App.Writer, "nothing changed")
	}
	return nil
}

// revokeRequest is certs revoke --kubeconfig: add the revocation to the
// EtcdCluster and wait for the controller to enforce it.
func revokeRequest(c *cli.Context) error {
	for _, f := range []string{"spec", "dir", "force", "command-timeout"} {
		if c.IsSet(f) {
			return input.Errorf("certs revoke: --%s works on a PKI directory: it does not go with --kubeconfig, which asks the controller (use one or the other)", f)
		}
	}
	if err := checkArgs(c); err != nil {
		return err
	}
	targets, serials := c.Args().Slice(), c.StringSlice("serial")
	if err := checkTargets("certs revoke:", targets); err != nil {
		return err
	}
	switch {
	case len(serials) > 0 && len(targets) > 0:
		return input.Errorf("certs revoke: give TARGETs or --serial, not both")
	case len(serials) == 0 && len(targets) == 0:
		return input.Errorf("certs revoke: name the certificates to revoke, or give --serial")
	}
	if _, ok := pki.Reasons[c.String("reason")]; !ok {
		return input.Errorf("certs revoke: --reason %q: use one of %s", c.String("reason"), pki.ReasonNames())
	}
	cl, ns, name, err := clusterClient(c)
	if err != nil {
		return err
	}
	_, err = request.Revoke(c.Context, request.RevokeOptions{
		Client: cl, Namespace: ns, Cluster: name, Targets: targets, Serials: serials, Reason: c.String("reason"),
		Timeout: c.Duration("timeout"), Expand: inventory, Log: runner.NewReportLogger(runner.TextReporter(c.App.Writer), "revoke"),
	})
	return err
}
