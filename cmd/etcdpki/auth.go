package main

import (
	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/auth"
	"github.com/etcdpki/etcdpki/internal/input"
)

func authCommand() *cli.Command {
	return &cli.Command{
		Name:  "auth",
		Usage: "etcd's users and roles: each certificate's CN an etcd user with only the keys the spec grants it",
		// An unknown subcommand is a usage error, as for certs and ca.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return input.Errorf("unknown command \"auth %s\" (see etcdpki auth --help)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{{
			Name:  "apply",
			Usage: "move the live cluster's etcd users, roles and grants to the spec, then prove every certificate on the wire",
			Description: "Connects as etcd's root user with a client certificate minted in memory from the CA (its file key\n" +
				"or PKCS#11 token; nothing is written), reads the cluster's users and roles and makes the changes\n" +
				"that move them to the spec's, one at a time and in a safe order: root first, each role's grants\n" +
				"before the users get the roles, what the spec no longer gives taken away, auth enabled last. Roles\n" +
				"named etcdpki:CN are etcdpki's; others are left alone. A run stopped at any step is finished by\n" +
				"running it again, and the cluster is never left with auth on and no root.\n\n" +
				"With auth on it then tries every certificate in the PKI (the apiserver's, each node's server, peer\n" +
				"and healthcheck client, each extra client): one operation its grants permit and one they refuse,\n" +
				"a line each. --dry-run prints the changes, one a line, and changes nothing.\n\n" +
				"Exit codes: 0 applied and proven (or nothing to do), 1 the cluster is not healthy, a change or a\n" +
				"proof failed (run it again), 2 bad input (nothing changed).",
			Flags: append(specFlags(),
				&cli.BoolFlag{Name: "dry-run", Usage: "print the changes against the live cluster and make none"}),
			Action: authApply,
		}},
	}
}

func authApply(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return input.Errorf("auth apply: unexpected argument %q (flags go before arguments)", c.Args().First())
	}
	inv, err := loadInventory(c, true)
	if err != nil {
		return err
	}
	if err := caKeyAgrees(inv); err != nil {
		return err
	}
	_, err = auth.Apply(c.Context, inv, auth.Options{DryRun: c.Bool("dry-run"), Out: c.App.Writer})
	return err
}
