package main

import (
	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/export"
)

// exportCommand is `etcdpki export`: hand a PKI to the cluster, for the
// controller and the agents.
func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "hand a PKI made by init or adopt to Kubernetes: the EtcdCluster, the CA Secret and the trust ConfigMap",
		Description: `Writes, in --namespace (which must exist):
  - Secret NAME-etcd-ca: tls.crt and tls.key (type kubernetes.io/tls), or, with the CA key in a
    PKCS#11 token, tls.crt and key-uri, the key's pkcs11: URI without a PIN (type Opaque): no key;
  - ConfigMap NAME-etcd-trust: ca.crt, and the CRL as binaryData crl.der;
  - EtcdCluster NAME (etcdpki.io/v1alpha1): its spec is the spec file's fields, pkiDir made absolute.
NAME is the spec's name. Each is created, or updated to the PKI when it exists, and the run prints
one line per object. Run it again after any change to the PKI on this host (certs revoke, a new
client) while no controller runs; a trust ConfigMap whose CRL the controller has since signed again
is kept when it revokes all the PKI's CRL does.

Refused with exit 2, changing nothing: a CA rotation in progress in the PKI (finish it first with the
CLI; later rotations run through the controller), a Secret that holds a different CA (another public key),
an EtcdCluster NAME whose spec.name is another cluster's, a spec name that is not a Kubernetes name.

   etcdpki export --spec /etc/etcdpki/cluster.yaml --kubeconfig admin.conf --namespace etcd-system --dry-run
   etcdpki export --spec /etc/etcdpki/cluster.yaml --kubeconfig admin.conf --namespace etcd-system

Exit codes: 0 exported, 1 the apiserver failed a request, 2 usage or input error (nothing written).`,
		Flags: append(append(specFlags(), apiFlags()...),
			&cli.BoolFlag{Name: "dry-run", Usage: "send every write as a server-side dry run (validated and admitted, nothing stored) and print what would change"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cl, ns, err := apiClient(c)
			if err != nil {
				return err
			}
			inv, err := loadInventory(c, true)
			if err != nil {
				return err
			}
			_, err = export.Run(c.Context, inv, export.Options{Client: cl, Namespace: ns, Out: c.App.Writer, DryRun: c.Bool("dry-run")})
			return err
		},
	}
}
