// Command kube-apiserver is kube-apiserver v1.37.2, built from the module
// proxy for etcdpki's controller tests (envtest starts it) and the tests
// that run an apiserver on an etcdpki-managed cluster.
package main

import (
	"os"

	_ "time/tzdata" // as upstream's cmd/kube-apiserver

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
