package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

func memberCommand() *cli.Command {
	flags := func() []cli.Flag {
		return append(specFlags(),
			&cli.BoolFlag{Name: "dry-run", Usage: "print every step against the live cluster and change nothing"},
			&cli.DurationFlag{Name: "member-timeout", Value: runner.DefaultMemberTimeout, Usage: "bound on the learner's catch-up and promotion (add), on the leadership hand-off (remove)"},
			&cli.DurationFlag{Name: "command-timeout", Value: runner.DefaultCommandTimeout, Usage: "bound on one deploy, start or restart command"},
		)
	}
	return &cli.Command{
		Name:  "member",
		Usage: "change the cluster's membership one member at a time toward the spec",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add spec node NAME: certificates, learner, config, start, catch-up, promotion, proof, then the apiserver",
				ArgsUsage: "NAME",
				Description: "NAME must be in the spec. Steps: pre-flight (every voting member healthy, no learner pending,\n" +
					"NAME and its peer URL not members yet, its data directory empty), NAME's certificates (as init),\n" +
					"etcd member add --learner, its etcd.conf.yml and etcd.env (initial-cluster from etcd's member list,\n" +
					"initial-cluster-state existing), deploy and start (its restart template), catch-up and promotion\n" +
					"(bounded by --member-timeout), the proof (its serials on both ports, voting, healthy), and last the\n" +
					"apiserver (etcd-flags, kubeadm block, its deploy and restart templates) and the other members'\n" +
					"configs (nothing restarts: initial-cluster is read only at bootstrap).\n\n" +
					"Exit codes: 0 added (or a voting member already), 1 a check or step failed (run it again to resume), 2 bad input.",
				Flags: append(flags(),
					&cli.StringFlag{Name: "node", Usage: "a PKI made from flags: the node as `NAME=IP[,IP|DNS...]`, added to PKI/etcdpki.yaml"}),
				Action: func(c *cli.Context) error { return memberAction(c, "member add", member.Add) },
			},
			{
				Name:      "remove",
				Usage:     "remove NAME, deleted from the spec: apiserver first, leadership away, remove, revoke its certificates",
				ArgsUsage: "NAME",
				Description: "Delete NAME from the spec first. Steps: pre-flight (the remaining voting members keep a healthy\n" +
					"quorum; a dead NAME is fine), the apiserver first (etcd-flags without NAME, its templates), leadership\n" +
					"moved away if NAME leads, etcd member remove (the removed etcd stops by itself), every certificate\n" +
					"NAME's host holds a key for revoked and proven refused on every remaining member's ports (server,\n" +
					"peer, healthcheck client, pairs a renewal replaced, and what etcdpki issue wrote into PKI/issued\n" +
					"for NAME or one of its own addresses), its bundle moved to PKI/backup (verified).\n\n" +
					"Exit codes: 0 removed, 1 a check or step failed (run it again to resume), 2 bad input.",
				Flags:  flags(),
				Action: func(c *cli.Context) error { return memberAction(c, "member remove", member.Remove) },
			},
		},
	}
}

func memberAction(c *cli.Context, what string, run func(context.Context, *pki.Inventory, member.Options) (*member.Result, error)) error {
	if err := checkArgs(c); err != nil {
		return err
	}
	if c.Args().Len() != 1 {
		return input.Errorf("%s: name one node (%s NAME)", what, what)
	}
	if err := checkName(what+" NAME", c.Args().First()); err != nil {
		return err
	}
	if c.Command.Name == "add" && c.String("node") != "" {
		if err := checkNodeFlags([]string{c.String("node")}); err != nil {
			return err
		}
	}
	for _, f := range []string{"member-timeout", "command-timeout"} {
		if c.Duration(f) <= 0 {
			return input.Errorf("%s: --%s must be positive", what, f)
		}
	}
	s, err := loadSpec(c, true)
	if err != nil {
		return err
	}
	if err := caKeyAgrees(inventory(s)); err != nil {
		return err
	}
	s, specYAML, err := flagsMadeSpec(c, s, what, c.Args().First())
	if err != nil {
		return err
	}
	res, err := run(c.Context, inventory(s), member.Options{
		SpecYAML: specYAML, Name: c.Args().First(), Out: c.App.Writer, Reporter: runner.TextReporter(c.App.Writer), DryRun: c.Bool("dry-run"),
		MemberTimeout: c.Duration("member-timeout"), CommandTimeout: c.Duration("command-timeout"),
	})
	if err != nil {
		return err
	}
	if res.Unchanged {
		fmt.Fprintln(c.App.Writer, "nothing changed")
	}
	return nil
}
