package main

import (
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/controller"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/kube"
)

// controllerCommand is `etcdpki controller`: the signer, trust upkeep and
// status prober for the EtcdClusters of one namespace.
func controllerCommand() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "sign the etcdpki agents' CSRs, keep the trust ConfigMaps and prove the members (runs in Kubernetes)",
		Description: `Signs CertificateSigningRequests for the signers etcdpki.io/etcd-server, etcdpki.io/etcd-peer and
etcdpki.io/etcd-client: only when the requester is the agent of that node or client (etcdpki:node:NODE,
etcdpki:client:NAME) and the request is exactly what the EtcdCluster's spec says; anything else is
Denied with the reason. Keeps each cluster's trust ConfigMap (NAME-etcd-trust) current and writes its
status from what the members serve on the wire, every --probe-interval.

One controller serves every EtcdCluster of its namespaces: --namespace may be repeated, or omitted
for every namespace (RBAC then needs a ClusterRole for EtcdClusters, ConfigMaps and the CA Secrets).
Each cluster is reconciled on its own: one that fails is Degraded and holds no other back.
It also enforces each EtcdCluster's spec.revocations (etcdpki certs revoke --kubeconfig).

With --leader-elect, replicas elect one leader through the Lease etcdpki-controller in
--lease-namespace (default: the first --namespace; serving every namespace, the pod's own);
only the leader signs.

   etcdpki controller --namespace etcd-system --leader-elect

Exit codes: 0 stopped by a signal, 1 the controller failed, 2 usage or input error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` (default: the in-cluster service account)"},
			&cli.StringSliceFlag{Name: "namespace", Usage: "a `NAMESPACE` of EtcdClusters, their CA Secrets and trust ConfigMaps; repeat for more, omit for every namespace"},
			&cli.StringFlag{Name: "lease-namespace", Usage: "`NAMESPACE` of the leader-election Lease (default: the first --namespace, or the pod's own)"},
			&cli.BoolFlag{Name: "leader-elect", Usage: "elect a leader among replicas; only the leader signs"},
			&cli.StringFlag{Name: "metrics-bind-address", Value: ":8080", Usage: "`ADDRESS` of the metrics endpoint (0 turns it off)"},
			&cli.StringFlag{Name: "health-probe-bind-address", Value: ":8081", Usage: "`ADDRESS` of /healthz and /readyz (0 turns it off)"},
			&cli.DurationFlag{Name: "probe-interval", Value: controller.DefaultProbeInterval, Usage: "how often every member's ports are proven"},
			&cli.DurationFlag{Name: "leader-elect-lease-duration", Value: controller.DefaultLeaseDuration, Usage: "how long a leader's Lease holds without renewal"},
			&cli.DurationFlag{Name: "leader-elect-renew-deadline", Value: controller.DefaultRenewDeadline, Usage: "how long the leader tries to renew before it steps down"},
			&cli.DurationFlag{Name: "leader-elect-retry-period", Value: controller.DefaultRetryPeriod, Usage: "how often candidates try to take the Lease"},
			&cli.Float64Flag{Name: "kube-api-qps", Value: defaultAPIQPS, Usage: "requests per second to the apiserver, sustained (each signature is 2 writes)"},
			&cli.IntFlag{Name: "kube-api-burst", Value: defaultAPIBurst, Usage: "requests to the apiserver in a burst"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			o, err := controllerOptions(c)
			if err != nil {
				return err
			}
			qps, burst := c.Float64("kube-api-qps"), c.Int("kube-api-burst")
			if qps <= 0 || burst <= 0 {
				return input.Errorf("controller: --kube-api-qps %g and --kube-api-burst %d must be positive", qps, burst)
			}
			cfg, err := controllerConfig(c.String("kubeconfig"))
			if err != nil {
				return err
			}
			cfg.QPS, cfg.Burst = float32(qps), burst
			return controller.Run(c.Context, cfg, o)
		},
	}
}

// The controller's client rate limit. client-go's default (5/s, burst
// 10) made a fleet's renewal wait on the client, not the signer: each CSR
// is an approval and a certificate write, so 2.5 CSRs/s at most
// (BenchmarkFleet: 1,600 CSRs in 639 s with 2 shared cores idle). The
// apiserver's priority and fairness still protects it from a burst.
const (
	defaultAPIQPS   = 50
	defaultAPIBurst = 100
)

// controllerOptions checks the flags: a namespace, positive durations, a
// lease that outlasts the renew deadline that outlasts the retry period
// (client-go's leader election refuses anything else, with a panic).
func controllerOptions(c *cli.Context) (controller.Options, error) {
	o := controller.Options{
		Namespaces:     c.StringSlice("namespace"),
		LeaseNamespace: c.String("lease-namespace"),
		LeaderElect:    c.Bool("leader-elect"),
		MetricsAddr:    c.String("metrics-bind-address"),
		ProbeAddr:      c.String("health-probe-bind-address"),
		ProbeInterval:  c.Duration("probe-interval"),
		LeaseDuration:  c.Duration("leader-elect-lease-duration"),
		RenewDeadline:  c.Duration("leader-elect-renew-deadline"),
		RetryPeriod:    c.Duration("leader-elect-retry-period"),
		Log:            c.App.ErrWriter,
		Expand:         inventory,
	}
	for _, ns := range append(slices.Clone(o.Namespaces), o.LeaseNamespace) {
		if errs := validation.IsDNS1123Label(ns); ns != "" && len(errs) > 0 {
			flag := map[bool]string{true: "lease-namespace", false: "namespace"}[ns == o.LeaseNamespace]
			return o, input.Errorf("controller: --%s %q: %s", flag, ns, strings.Join(errs, "; "))
		}
	}
	if len(o.Namespaces) == 0 && o.LeaseNamespace == "" {
		if _, err := os.Stat(controller.ServiceAccountNamespace); err != nil {
			return o, input.Errorf("controller: --lease-namespace is required when no --namespace is given outside a pod (the namespace of the Lease)")
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"probe-interval", o.ProbeInterval}, {"leader-elect-lease-duration", o.LeaseDuration}, {"leader-elect-renew-deadline", o.RenewDeadline}, {"leader-elect-retry-period", o.RetryPeriod}} {
		if d.v <= 0 {
			return o, input.Errorf("controller: --%s %s must be positive", d.flag, d.v)
		}
	}
	if o.LeaseDuration <= o.RenewDeadline {
		return o, input.Errorf("controller: --leader-elect-lease-duration %s must be longer than --leader-elect-renew-deadline %s", o.LeaseDuration, o.RenewDeadline)
	}
	if float64(o.RenewDeadline) <= 1.2*float64(o.RetryPeriod) {
		return o, input.Errorf("controller: --leader-elect-renew-deadline %s must be longer than 1.2 × --leader-elect-retry-period %s", o.RenewDeadline, o.RetryPeriod)
	}
	return o, nil
}

// controllerConfig is the kubeconfig's cluster, or without --kubeconfig
// inside a pod the in-cluster service account's (the Deployment in
// deploy/controller.yaml runs so). Outside a pod the flag is required.
func controllerConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			cfg.UserAgent = "etcdpki-controller"
			return cfg, nil
		}
	}
	return kube.Config(kubeconfig)
}
