// Package kube is the Kubernetes glue the controller, the agent and the
// CLI share: the scheme with the EtcdCluster types, a client from a
// kubeconfig file, status updates that retry on conflict, and spec
// writes locked to their one field (UpdateField). It holds no
// logic of its own; the operations do.
package kube

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// Scheme is client-go's scheme with etcdpki.io/v1alpha1 added.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	// Both only register Go types: they cannot fail at run time.
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Config reads a kubeconfig file. A file that is missing or not a
// kubeconfig is bad input (exit 2), named with the flag.
func Config(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return nil, input.Errorf("--kubeconfig: missing (the kubeconfig of the identity this runs as)")
	}
	// A FIFO or a device named by mistake would block client-go's read,
	// /dev/zero would fill memory: the one safe reader's check first.
	if err := regular.Check(kubeconfig, regular.MaxManifest); err != nil {
		return nil, input.Errorf("--kubeconfig %s: %v", kubeconfig, pathx.UnwrapPath(err))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, input.Errorf("--kubeconfig %s: %v", kubeconfig, err)
	}
	cfg.UserAgent = "etcdpki"
	return cfg, nil
}

// Client is a controller-runtime client for the kubeconfig's cluster.
func Client(kubeconfig string) (client.Client, *rest.Config, error) {
	cfg, err := Config(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
	}
	return c, cfg, nil
}

// UpdateStatus reads the EtcdCluster, applies change to its status and
// writes it through the status subresource, again from a fresh read on a
// conflict: the controller and every agent write the same status, each
// its own entries (v1alpha1.EtcdClusterStatus.Observe merges them).
func UpdateStatus(ctx context.Context, c client.Client, key client.ObjectKey, change func(*v1alpha1.EtcdCluster) error) error {
	return RetryOnConflict(func() error {
		var ec v1alpha1.EtcdCluster
		if err := c.Get(ctx, key, &ec); err != nil {
			return err
		}
		if err := change(&ec); err != nil {
			return err
		}
		return c.Status().Update(ctx, &ec)
	})
}
