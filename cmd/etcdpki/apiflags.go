package main

import (
	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/kube"
)

// apiFlags are the flags of the commands that talk to the Kubernetes
// API: the identity's kubeconfig and the namespace of the EtcdCluster.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` of the identity to act as"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "`NAMESPACE` of the EtcdCluster, its CA Secret and trust ConfigMap"},
	}
}

// apiClient checks --namespace and reads --kubeconfig (both bad input,
// exit 2, when missing or malformed) and returns a client and the
// namespace. It does not dial: the first request does.
func apiClient(c *cli.Context) (client.WithWatch, string, error) {
	ns := c.String("namespace")
	if ns == "" {
		return nil, "", input.Errorf("--namespace: missing (the namespace of the EtcdCluster)")
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, "", input.Errorf("--namespace %q: %s", ns, errs[0])
	}
	cfg, err := kube.Config(c.String("kubeconfig"))
	if err != nil {
		return nil, "", err
	}
	cl, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return nil, "", input.Errorf("--kubeconfig %s: %v", c.String("kubeconfig"), err)
	}
	return cl, ns, nil
}

// clusterFlag is --cluster of every request to the controller.
func clusterFlag() cli.Flag {
	return &cli.StringFlag{Name: "cluster", Usage: "with --kubeconfig: the EtcdCluster `NAME` (the spec's name)"}
}

// clusterClient checks the --cluster and --timeout that every request to
// the controller takes, then makes its client: the client, the
// namespace and the EtcdCluster's name.
func clusterClient(c *cli.Context) (client.WithWatch, string, string, error) {
	name := c.String("cluster")
	if name == "" {
		return nil, "", "", input.Errorf("--cluster: missing (the EtcdCluster's name, the spec's name)")
	}
	if err := checkName("--cluster", name); err != nil {
		return nil, "", "", err
	}
	if c.Duration("timeout") <= 0 {
		return nil, "", "", input.Errorf("--timeout %s: must be positive", c.Duration("timeout"))
	}
	cl, ns, err := apiClient(c)
	return cl, ns, name, err
}
