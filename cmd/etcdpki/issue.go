package main

import (
	"net"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
)

func issueCommand() *cli.Command {
	return &cli.Command{
		Name:      "issue",
		Usage:     "issue one server, peer or client certificate from the existing CA",
		ArgsUsage: "server|peer|client NAME | root",
		Description: `Writes ca.crt and the pair into --out (default PKI/issued/NAME), switched atomically.

   etcdpki issue --dir pki --ip 10.0.0.21 --dns etcd-gw.example.internal server etcd-gw
   etcdpki issue --dir pki --org system:masters client ops-admin

"issue root" writes the break-glass client certificate of etcd's superuser (CN root) into
PKI/root only (key 0600; no --out, never in a bundle), for etcdctl when etcdpki cannot run.
etcdpki's own admin calls never need it: each run mints a root client in memory.`,
		Flags: append(specFlags(),
			&cli.StringSliceFlag{Name: "ip", Usage: "IP SAN (repeatable; server and peer only)"},
			&cli.StringSliceFlag{Name: "dns", Usage: "DNS SAN (repeatable; server and peer only)"},
			&cli.StringSliceFlag{Name: "org", Usage: "subject organization (client only)"},
			&cli.StringFlag{Name: "out", Usage: "bundle `DIR` (default PKI/issued/NAME)"},
		),
		Action: func(c *cli.Context) error {
			if err := checkArgs(c); err != nil {
				return err
			}
			root := c.Args().First() == issue.KindRoot
			switch {
			case root && c.Args().Len() != 1:
				return input.Errorf("issue root: takes no NAME, got %d arguments", c.Args().Len())
			case !root && c.Args().Len() != 2:
				return input.Errorf("issue: want server|peer|client NAME or root, got %d arguments", c.Args().Len())
			case !root:
				if err := checkName("name", c.Args().Get(1)); err != nil {
					return err
				}
			}
			var hosts []string
			for _, v := range c.StringSlice("ip") {
				ip := net.ParseIP(v)
				if ip == nil {
					return input.Errorf("--ip %q: not an IP address", v)
				}
				hosts = append(hosts, ip.String())
			}
			// Checked here, while it is known which flag a value came
			// from: issue.One takes anything that parses as an IP for
			// an IP SAN.
			for _, v := range c.StringSlice("dns") {
				if err := cluster.CheckDNSName(v); err != nil {
					return input.Errorf("--dns %v", err)
				}
				hosts = append(hosts, v)
			}
			inv, err := loadInventory(c, false)
			if err != nil {
				return err
			}
			if err := caKeyAgrees(inv); err != nil {
				return err
			}
			_, err = issue.One(c.Context, inv, issue.OneRequest{
				Kind: c.Args().Get(0), Name: c.Args().Get(1), Hosts: hosts,
				Organization: c.StringSlice("org"), Out: c.String("out"),
			}, issue.Options{Out: c.App.Writer})
			return err
		},
	}
}
