package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the etcd CA, node and client certificates, etcd.conf.yml per node and kube-apiserver flags",
		Description: `Creates whatever is missing and reuses whatever exists and is valid; never overwrites a CA.
Everything is checked before anything is written: bad input exits 2 and changes nothing.

   etcdpki init --spec examples/three-node.yaml
   etcdpki init --dir pki --node etcd-node-1=10.0.0.11 --node etcd-node-2=10.0.0.12,etcd-node-2.example.internal
   etcdpki init --spec cluster.yaml --ca-key 'pkcs11:token=etcd;object=etcd-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/etcdpki/pin'`,
		Flags: append(append(specFlags(), nodeFlags()...),
			&cli.StringFlag{Name: "ca-key", Usage: "the CA key in a PKCS#11 token: a pkcs11: `URI` (RFC 7512; PIN from its pin-source file or $" + cluster.PINEnv + "), overriding the spec's ca.key; default the file PKI/etcd/ca.key"}),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := checkNodeFlags(c.StringSlice("node")); err != nil {
				return err
			}
			if n := c.String("name"); n != "" {
				if err := checkName("--name", n); err != nil {
					return err
				}
			}
			inv, err := loadInventory(c, true)
			if err != nil {
				return err
			}
			o := issue.Options{Out: c.App.Writer}
			if len(c.StringSlice("node")) > 0 {
				if o.SpecYAML, err = flagsSpec(c, inv.Spec); err != nil {
					return err
				}
			}
			res, err := issue.Init(c.Context, inv, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "\n%d created, %d reused. kube-apiserver flags (%s):\n", len(res.Created), len(res.Reused), inv.Paths.APIServerFlags())
			for _, f := range pki.APIServerFlags(inv) {
				fmt.Fprintf(c.App.Writer, "  %s\n", f)
			}
			if inv.Spec.Auth.Enabled {
				fmt.Fprintf(c.App.Writer, "etcd auth: on (etcd compacts itself; kube-apiserver runs with %s). Once the members run: etcdpki auth apply\n", pki.APIServerCompactionOff)
			}
			return nil
		},
	}
}
