package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/adopt"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/probe"
)

// adoptCommand is `etcdpki adopt`: take a running cluster's PKI under
// management without touching the cluster.
func adoptCommand() *cli.Command {
	return &cli.Command{
		Name:  "adopt",
		Usage: "take a running cluster's CA and certificates under management, changing nothing on the cluster",
		Description: `Imports the CA, handshakes every member's client and peer port with a probe certificate from it,
checks what each serves against the spec (SANs for the node's IPs, serverAuth and clientAuth, the CA),
imports the pairs found in --node-dir/--client-dir (kubeadm, cfssl-recipe and kubespray file names) when
they are what the member serves, and records every other certificate in use as held on its host with its
expiry. Nothing is reissued and nothing on the cluster changes; rotate renews each certificate when due.
The source files are only read.

   etcdpki adopt --spec cluster.yaml --ca-cert /etc/kubernetes/pki/etcd/ca.crt --ca-key /etc/kubernetes/pki/etcd/ca.key \
       --node-dir etcd-1=/backup/etcd-1/pki --client-dir kube-apiserver=/backup/cp-1/pki

Exit codes: 0 adopted (or --dry-run), 1 the cluster differs from the spec (nothing written; see
--accept-mismatch), 2 usage or input error (nothing written).`,
		Flags: append(specFlags(),
			&cli.StringFlag{Name: "ca-cert", Usage: "the cluster's CA certificate `FILE` (kubeadm: etcd/ca.crt, cfssl and kubespray: ca.pem)"},
			&cli.StringFlag{Name: "ca-key", Usage: "the cluster's CA key `FILE`"},
			&cli.StringSliceFlag{Name: "node-dir", Usage: "`NAME=DIR`: a copy of node NAME's certificates and keys to import (repeat per node)"},
			&cli.StringSliceFlag{Name: "client-dir", Usage: "`NAME=DIR`: a copy of client NAME's certificate and key to import (repeat per client)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the report and write nothing"},
			&cli.BoolFlag{Name: "accept-mismatch", Usage: "write even when the cluster differs from the spec; the first renewal follows the spec"},
			&cli.DurationFlag{Name: "timeout", Value: probe.DefaultTimeout, Usage: "bound on each port's handshake"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			nodes, err := namedDirs(c, "node-dir")
			if err != nil {
				return err
			}
			clients, err := namedDirs(c, "client-dir")
			if err != nil {
				return err
			}
			if c.Duration("timeout") <= 0 {
				return input.Errorf("--timeout %s: must be positive", c.Duration("timeout"))
			}
			inv, err := loadInventory(c, true)
			if err != nil {
				return err
			}
			_, err = adopt.Run(c.Context, inv, adopt.Options{
				CACert: c.String("ca-cert"), CAKey: c.String("ca-key"),
				NodeDirs: nodes, ClientDirs: clients,
				DryRun: c.Bool("dry-run"), AcceptMismatch: c.Bool("accept-mismatch"),
				Timeout: c.Duration("timeout"), Out: c.App.Writer,
			})
			return err
		},
	}
}

// namedDirs parses repeated NAME=DIR flags.
func namedDirs(c *cli.Context, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range c.StringSlice(flag) {
		name, dir, ok := strings.Cut(v, "=")
		if !ok || name == "" || dir == "" {
			return nil, input.Errorf("--%s %q: want NAME=DIR", flag, v)
		}
		if err := checkName("--"+flag+" "+v+": NAME", name); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, input.Errorf("--%s %s: given twice", flag, name)
		}
		out[name] = pathx.Abs(dir)
	}
	return out, nil
}
