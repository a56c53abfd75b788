package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/carotate"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

func caCommand() *cli.Command {
	return &cli.Command{
		Name:  "ca",
		Usage: "replace the etcd CA (ca rotate)",
		// An unknown subcommand is a usage error, as for certs.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return input.Errorf("unknown command \"ca %s\" (see etcdpki ca --help)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{caRotateCommand()},
	}
}

func caRotateCommand() *cli.Command {
	return &cli.Command{
		Name:  "rotate",
		Usage: "replace the etcd CA in four stages, each proven on the wire, resumable at any point",
		Description: `etcd reads its trusted CA file only at start, and so does kube-apiserver's etcd client:
a new CA reaches a running cluster only through restarts, in stages that never leave a member
without a CA in common with its peers and clients.

   prepare     create the next CA (the spec's ca settings) in PKI/etcd-next; nothing deployed
   trust-both  every bundle's ca.crt = old CA + new CA; deploy; rolling restart (followers first,
               one hand-off); proof per member: a probe client certificate from the NEW CA is
               accepted on its client and peer ports; then every client's restart template runs
   reissue     every leaf issued again from the new CA; no restart; proof: both ports serve the
               new leaves from the new CA, and the new client certificates are accepted
   finish      every bundle's ca.crt = new CA only; deploy; rolling restart; proof per member: a
               probe from the OLD CA is refused and one from the NEW CA accepted on both ports;
               clients restart; the old CA goes to PKI/backup/ca-SERIAL/ (key 0400) and the new
               CA becomes PKI/etcd

Where a run stands is read from the files and the journal (PKI/rotate-state.json): a run killed
at any point resumes where it stopped, and restarts no member twice in a stage. A client without
a restart template (clients[].restart) cannot be proven from here: the run stops with exit 0 and
says what to restart on which host; run again with --clients-restarted once that is done.

   etcdpki ca rotate --spec cluster.yaml --dry-run
   etcdpki ca rotate --spec cluster.yaml --until trust-both
   etcdpki ca rotate --spec cluster.yaml --clients-restarted

Through the controller on Kubernetes (etcdpki controller and an etcdpki agent on each host):
--kubeconfig sets spec.ca.rotation on the EtcdCluster and follows status.caRotation, printing
each stage and each host's proof; the controller grants the restarts, the agents run them.

   etcdpki ca rotate --kubeconfig admin.conf --namespace etcd-system --cluster prod --timeout 30m

Exit codes: 0 done, stopped by --until, or waiting for clients to be restarted by hand; 1 a member,
a proof or a check failed (or another run holds the lock); 2 usage or input error (nothing changed).`,
		Flags: append(append(specFlags(),
			&cli.StringFlag{Name: "until", Usage: "stop after `STAGE`: " + strings.Join(pki.CAStages, ", ")},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the four stages, where the files stand and what each would do; change nothing"},
			&cli.BoolFlag{Name: "clients-restarted", Usage: "the clients without a restart template have been restarted by hand: go on"},
			&cli.BoolFlag{Name: "new", Usage: "start another rotation although the CA in effect is the one the last rotation put there"},
			&cli.DurationFlag{Name: "member-timeout", Value: runner.DefaultMemberTimeout, Usage: "how long a restarted member may take to serve and catch up"},
			&cli.DurationFlag{Name: "hand-off-settle", Value: runner.DefaultHandOffSettle, Usage: "pause after moving leadership before the next member goes down (0s: none)"},
			&cli.DurationFlag{Name: "command-timeout", Value: runner.DefaultCommandTimeout, Usage: "bound on one deploy or restart command"},
		), caRequestFlags()...),
		Action: runCARotate,
	}
}

func runCARotate(c *cli.Context) error {
	if c.IsSet("kubeconfig") {
		return runCARotateRequest(c)
	}
	if err := caPKIOnly(c); err != nil {
		return err
	}
	if err := noArgs(c); err != nil {
		return err
	}
	// A signal lets the current restart or deploy finish (see stepsFinish).
	stepsFinish.Store(true)
	inv, err := loadInventory(c, true)
	if err != nil {
		return err
	}
	_, err = carotate.Run(c.Context, inv, carotate.Options{
		Until:            c.String("until"),
		DryRun:           c.Bool("dry-run"),
		ClientsRestarted: c.Bool("clients-restarted"),
		New:              c.Bool("new"),
		Out:              c.App.Writer,
		Reporter:         runner.TextReporter(c.App.Writer),
		MemberTimeout:    c.Duration("member-timeout"),
		HandOffSettle:    settle(c.Duration("hand-off-settle")),
		CommandTimeout:   c.Duration("command-timeout"),
	})
	return err
}
