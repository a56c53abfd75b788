package main

import (
	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/agent"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/runner"
)

// agentCommand is `etcdpki agent`: the renewal of one host's
// certificates through the Kubernetes CSR API.
func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "renew this host's etcd certificates through Kubernetes CSRs, keys made and kept here",
		Description: `Runs on each etcd host (--node) and each kube-apiserver host (--client kube-apiserver).
It reads the EtcdCluster's spec and the bundle deployed in --dir through the same read model as the
CLI. For every certificate due (the spec's renewBefore) or named by a renewal request on the
EtcdCluster (etcdpki rotate --kubeconfig), in this order: makes a new key in memory, sends only a
CertificateSigningRequest and waits for the certificate, checks it (chain to the bundle's ca.crt,
subject and SANs, key match, not revoked), switches the pair atomically (the key's one write,
0600), proves it on the wire (a node: its client and peer ports serve the new serials and another
member accepts its peer certificate; a client: a linearizable read), then reports it to the
EtcdCluster's status and as an Event. A changed CRL in the trust ConfigMap is installed at once,
without a restart. While the apiserver is away the pairs in place keep serving; the agent says so
in its log and metrics and retries with backoff.

Its kubeconfig authenticates as etcdpki:node:NODE (or etcdpki:client:NAME), in group
etcdpki:agents (deploy/agent-rbac.yaml).

   etcdpki agent --kubeconfig /etc/etcdpki/agent.kubeconfig --namespace etcd --cluster etcd-prod \
       --node etcd-node-1 --dir /etc/kubernetes/pki --metrics-file /var/lib/node_exporter/etcdpki-agent.prom

Exit codes (--once): 0 everything due renewed and proven, 1 a renewal or the apiserver failed,
2 usage or input error. Without --once it runs until stopped.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` with the agent's identity"},
			&cli.StringFlag{Name: "namespace", Usage: "`NAMESPACE` of the EtcdCluster"},
			&cli.StringFlag{Name: "cluster", Usage: "`NAME` of the EtcdCluster"},
			&cli.StringFlag{Name: "node", Usage: "renew the certificates of node `NODE` (its server, peer and healthcheck client)"},
			&cli.StringFlag{Name: "client", Usage: "renew the certificate of client `NAME` (kube-apiserver: apiserver-etcd-client)"},
			&cli.StringFlag{Name: "dir", Usage: "`DIR` where the bundle is deployed on this host (a node's /etc/kubernetes/pki)"},
			&cli.StringFlag{Name: "metrics-file", Usage: "write node_exporter textfile metrics to `FILE`"},
			&cli.BoolFlag{Name: "once", Usage: "one run, then exit (0 when everything due is renewed and proven)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			o, err := agentOptions(c)
			if err != nil {
				return err
			}
			return agent.Run(c.Context, o)
		},
	}
}

func agentOptions(c *cli.Context) (agent.Options, error) {
	o := agent.Options{Namespace: c.String("namespace"), Cluster: c.String("cluster"), Dir: c.String("dir"),
		MetricsFile: c.String("metrics-file"), Once: c.Bool("once"), Expand: inventory,
		Log: runner.NewReportLogger(runner.TextReporter(c.App.Writer), "agent")}
	node, client := c.String("node"), c.String("client")
	switch {
	case node != "" && client != "":
		return o, input.Errorf("--node and --client: give one (one agent per bundle)")
	case node != "":
		o.Owner, o.Node = node, true
	case client != "":
		o.Owner = client
	default:
		return o, input.Errorf("--node or --client: one is required")
	}
	if err := cluster.CheckName(o.Owner); err != nil {
		return o, input.Errorf("--node/--client: %v", err)
	}
	for _, f := range []string{"namespace", "cluster", "dir"} {
		if c.String(f) == "" {
			return o, input.Errorf("--%s: required", f)
		}
	}
	cfg, err := kube.Config(c.String("kubeconfig"))
	if err != nil {
		return o, err
	}
	o.Config = cfg
	return o, nil
}
