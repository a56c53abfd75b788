package main

import (
	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/verify"
)

// verifyCommand is `etcdpki verify`: the pre-flight check before pointing
// kube-apiserver at the etcd cluster.
func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "prove the apiserver's etcd TLS material reaches a healthy, consistent cluster",
		Description: `Checks the CA, client certificate and key on disk; then every endpoint at once over real TLS
(TCP, handshake, server certificate, etcd status, a linearizable read, alarms), each within --timeout;
then that the endpoints agree on one cluster, one leader and one member list. With a spec, also etcd's
access control: auth off is a warning (every certificate the CA signs reads every Secret); with auth
on, each certificate's common name (its etcd user) against the spec's grants, read as root with a
certificate minted in memory from the CA (without the CA, a warning that they cannot be read). Every
check prints ok, warn or fail with a one-line reason.

Inputs, first one wins per value: explicit flags (kube-apiserver's own names work too), then
--apiserver-manifest (or --manifests-dir), then --spec (./etcdpki.yaml if present and nothing else is given).

   etcdpki verify --spec etcdpki.yaml
   etcdpki verify --apiserver-manifest /etc/kubernetes/manifests/kube-apiserver.yaml
   etcdpki verify --manifests-dir /etc/kubernetes/manifests
   etcdpki verify --etcd-servers=https://10.0.0.11:2379 --etcd-cafile=ca.crt \
       --etcd-certfile=apiserver-etcd-client.crt --etcd-keyfile=apiserver-etcd-client.key

Exit codes: 0 all checks ok (warnings allowed unless --strict), 1 a check failed, 2 usage or input error.`,
		Flags: append(specFlags(),
			&cli.StringFlag{Name: "apiserver-manifest", Usage: "read --etcd-* flags from a kube-apiserver static Pod manifest `FILE`"},
			&cli.StringFlag{Name: "manifests-dir", Usage: "check the whole control plane's static Pod manifests in `DIR` (/etc/kubernetes/manifests): its kube-apiserver manifest as --apiserver-manifest, no --etcd-* flag elsewhere, no stacked etcd left beside an external one"},
			&cli.StringSliceFlag{Name: "endpoints", Aliases: []string{"etcd-servers"}, Usage: "etcd client `URLS` (https://host:port, comma-separated or repeated)"},
			&cli.StringFlag{Name: "cacert", Aliases: []string{"etcd-cafile"}, Usage: "CA certificate `FILE` that signs the etcd servers"},
			&cli.StringFlag{Name: "cert", Aliases: []string{"etcd-certfile"}, Usage: "client certificate `FILE`"},
			&cli.StringFlag{Name: "key", Aliases: []string{"etcd-keyfile"}, Usage: "client key `FILE`"},
			&cli.DurationFlag{Name: "timeout", Value: probe.DefaultTimeout, Usage: "bound on each endpoint's checks"},
			&cli.StringFlag{Name: "renew-before", Usage: "warn when a certificate expires within `DURATION` (default: the spec's renewBefore, else 30d)"},
			&cli.BoolFlag{Name: "strict", Usage: "treat warnings as failures"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "output `FORMAT`: table or json"},
			&cli.BoolFlag{Name: "print-flags", Usage: "when everything passes, print the kube-apiserver --etcd-* flags and the kubeadm etcd.external block"},
		),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			o, specFile, err := verifyOptions(c)
			if err != nil {
				return err
			}
			inv, err := verifyInventory(c, specFile)
			if err != nil {
				return err
			}
			_, err = verify.Run(c.Context, inv, o, c.App.Writer)
			return err
		},
	}
}

// verifyOptions turns the flags into verify.Options and the spec file
// to check against ("" for none: verify's flag-only mode).
func verifyOptions(c *cli.Context) (o verify.Options, specFile string, err error) {
	specFile, pkiDir := c.String("spec"), c.String("dir")
	o = verify.Options{
		Manifest:     c.String("apiserver-manifest"),
		ManifestsDir: c.String("manifests-dir"),
		Endpoints:    c.StringSlice("endpoints"),
		CAFile:       c.String("cacert"),
		CertFile:     c.String("cert"),
		KeyFile:      c.String("key"),
		Timeout:      c.Duration("timeout"),
		Strict:       c.Bool("strict"),
		PrintFlags:   c.Bool("print-flags"),
	}
	switch c.String("output") {
	case "table":
	case "json":
		o.JSON = true
	default:
		return o, "", input.Errorf("--output %q: use table or json", c.String("output"))
	}
	if v := c.String("renew-before"); v != "" {
		d, err := cluster.ParseDuration(v)
		if err != nil {
			return o, "", input.Errorf("--renew-before: %v", err)
		}
		o.RenewBefore = d
	}
	// The TLS files are checked here, before any check runs: a FIFO, a
	// device or a huge file is bad input (exit 2), not a failed check.
	if err := regular.CheckDir(pkiDir); err != nil {
		return o, "", input.Errorf("--dir %s: %v", pkiDir, pathx.UnwrapPath(err))
	}
	for _, f := range [][2]string{{"--cacert", o.CAFile}, {"--cert", o.CertFile}, {"--key", o.KeyFile}} {
		if err := regular.Check(f[1], regular.MaxPEM); err != nil {
			return o, "", input.Errorf("%s %s: %v", f[0], f[1], pathx.UnwrapPath(err))
		}
	}
	nothing := specFile == "" && o.Manifest == "" && o.ManifestsDir == "" && len(o.Endpoints) == 0 && o.CAFile == "" && o.CertFile == "" && o.KeyFile == ""
	if nothing {
		if specFile, err = pkiSpecIfPresent(pkiDir); err != nil {
			return o, "", err
		}
		if specFile == "" {
			if specFile, err = defaultSpecIfPresent(); err != nil {
				return o, "", err
			}
		}
	}
	return o, specFile, nil
}

// verifyInventory is the spec verify checks against, expanded by the
// one helper every command uses; nil without a spec file.
func verifyInventory(c *cli.Context, specFile string) (*pki.Inventory, error) {
	if specFile == "" {
		if c.String("dir") != "" {
			return nil, input.Errorf("--dir needs --spec: the spec says which endpoints to check")
		}
		return nil, nil
	}
	s, err := cluster.Load(specFile, cluster.Options{PKIDir: c.String("dir")})
	if err != nil {
		return nil, err
	}
	return inventory(s), nil
}
