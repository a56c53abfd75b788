package controller

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/etcdpki/etcdpki/internal/regular"
)

// clusterWorkers is how many EtcdClusters are reconciled at once by each
// per-cluster reconciler: a cluster whose members do not answer costs a
// probe timeout (runner.ProbeTimeout) per pass, and with one worker
// every other cluster of the fleet would queue behind it.
const clusterWorkers = 8

// ServiceAccountNamespace is where a pod finds its own namespace: the
// Lease's when every namespace is served and none is named for it.
const ServiceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// servedNS is the set of namespaces one controller serves; empty means
// every namespace.
type servedNS []string

// has reports whether the controller serves EtcdClusters in ns.
func (s servedNS) has(ns string) bool { return len(s) == 0 || slices.Contains(s, ns) }

func (s servedNS) String() string {
	if len(s) == 0 {
		return "every namespace"
	}
	return "namespace " + strings.Join(s, ", ")
}

// cacheNamespaces is the manager cache's DefaultNamespaces: the servedNS
// namespaces, or nil (every namespace).
func (s servedNS) cacheNamespaces() map[string]cache.Config {
	if len(s) == 0 {
		return nil
	}
	m := map[string]cache.Config{}
	for _, ns := range s {
		m[ns] = cache.Config{}
	}
	return m
}

// namespaces are the servedNS namespaces: Namespace and Namespaces, each
// once; none for every namespace.
func (o Options) namespaces() servedNS {
	var s servedNS
	for _, ns := range append([]string{o.Namespace}, o.Namespaces...) {
		if ns != "" && !slices.Contains(s, ns) {
			s = append(s, ns)
		}
	}
	return s
}

// leaseNamespace is where the Lease lives: LeaseNamespace, else the first
// servedNS namespace, else (serving every namespace) the pod's own, read
// from its service account. Outside a pod serving every namespace it
// must be given.
func (o Options) leaseNamespace() (string, error) {
	if o.LeaseNamespace != "" {
		return o.LeaseNamespace, nil
	}
	if s := o.namespaces(); len(s) > 0 {
		return s[0], nil
	}
	// A namespace name is at most 63 bytes; the reader refuses a FIFO or
	// a device where the file should be.
	b, err := regular.ReadFile(ServiceAccountNamespace, 4096)
	if ns := strings.TrimSpace(string(b)); err == nil && ns != "" {
		return ns, nil
	}
	return "", fmt.Errorf("controller: serving every namespace outside a pod: --lease-namespace is required (where the Lease %s lives)", "etcdpki-controller")
}
