package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// Defaults of the controller's flags.
const (
	// DefaultProbeInterval is how often every member is proven on the
	// wire: a handshake per port per member, cheap for etcd, and often
	// enough that status is never a renewal behind.
	DefaultProbeInterval = 30 * time.Second
	// DefaultLeaseDuration and DefaultRenewDeadline are
	// controller-runtime's (and kube-controller-manager's). A killed
	// leader is replaced once a follower sees its Lease expire: the
	// follower dates the Lease from when it last saw it change and looks
	// every RetryPeriod, jittered up to 2.2 times, so the takeover comes
	// up to 2 × 2.2 × RetryPeriod after the lease duration. With
	// client-go's 2 s that measured 15.5 to 22.4 s after kill -9
	// (BenchmarkFailover, lease 15 s): past the lease duration plus 5 s
	// the issue promises. 500 ms bounds the overshoot to 2.2 s, for two
	// Lease writes a second from the leader: measured 15.9 s on average,
	// 16.4 s at most (4 kills).
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 500 * time.Millisecond
)

// setLogger sets controller-runtime's logger once a process.
var setLogger sync.Once

// skipNameValidation lets one process run several managers (a manager
// names its controllers, and controller-runtime refuses a name twice).
var skipNameValidation = true

// signWorkers is how many CSRs are signed at once: each waits on two
// apiserver writes (approval, then certificate), so a few in flight keep
// a burst of renewals (every member of a cluster at once) moving.
const signWorkers = 4

// Options are `etcdpki controller`'s flags.
type Options struct {
	// Namespace holds the EtcdClusters, their CA Secrets and trust
	// ConfigMaps, and the Lease.
	Namespace string
	// Namespaces are more namespaces served (--namespace repeated); with
	// Namespace empty and none here, every namespace is.
	Namespaces []string
	// LeaseNamespace holds the Lease; "" means the first served
	// namespace, or the pod's own when every namespace is served.
	LeaseNamespace string
	// LeaderElect turns on leader election (for more than one replica).
	LeaderElect bool
	// MetricsAddr and ProbeAddr are the metrics and health endpoints'
	// bind addresses; "0" turns one off.
	MetricsAddr, ProbeAddr string
	// ProbeInterval is how often members are proven.
	ProbeInterval time.Duration
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Log receives the controller's own lines (leadership).
	Log io.Writer
	// Expand is pki.New, handed down by cmd: every EtcdCluster's spec is
	// expanded there, as every command's is.
	Expand func(*cluster.Spec) *pki.Inventory
}

// Run runs the controller until ctx ends: the CSR signer, and for every
// EtcdCluster in the namespace the trust upkeep and the status prober.
// With LeaderElect only the Lease holder runs them; the others wait,
// ready to take over.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.Expand == nil {
		return errors.New("controller: Options.Expand is nil (cmd hands down pki.New)")
	}
	if o.Log != nil {
		// controller-runtime logs through one global logger; without one
		// it prints a warning and a stack trace after 30 s and nothing
		// else, hiding every reconcile error from the operator.
		setLogger.Do(func() { ctrl.SetLogger(crzap.New(crzap.WriteTo(o.Log))) })
	}
	leaseNS, err := o.leaseNamespace()
	if err != nil {
		return err
	}
	o.LeaseNamespace = leaseNS
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                        kube.Scheme(),
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              v1alpha1.LeaseName,
		LeaderElectionNamespace:       o.LeaseNamespace,
		LeaderElectionResourceLock:    "leases",
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.LeaseDuration,
		RenewDeadline:                 &o.RenewDeadline,
		RetryPeriod:                   &o.RetryPeriod,
		// Namespaced objects only from the served namespaces (all when
		// none is named); CSRs are cluster-scoped. Secrets are never
		// cached (see authorities).
		Cache:  cache.Options{DefaultNamespaces: o.namespaces().cacheNamespaces()},
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		// One manager a process in production; tests and benchmarks run
		// several in one, each for its own namespace.
		Controller: config.Controller{SkipNameValidation: &skipNameValidation},
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	if err := setup(mgr, o); err != nil {
		return err
	}
	go announce(ctx, mgr, o)
	return mgr.Start(ctx)
}

// setup registers the reconcilers.
func setup(mgr manager.Manager, o Options) error {
	auth := &authorities{reader: mgr.GetAPIReader()}
	ev := eventRecorder{r: mgr.GetEventRecorder("etcdpki-controller")}
	signed := make(chan event.GenericEvent, 64)
	s := &signer{c: mgr.GetClient(), reader: mgr.GetAPIReader(), ns: o.namespaces(), authorities: auth, events: ev, signed: signed, replica: replicaName(), expand: o.Expand}
	err := ctrl.NewControllerManagedBy(mgr).Named("csr-signer").
		// CSRs are independent, and each waits on two apiserver writes.
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: signWorkers}).
		For(&certificatesv1.CertificateSigningRequest{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(obj client.Object) bool {
			csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
			return ok && pending(csr)
		}))).
		Complete(s)
	if err != nil {
		return fmt.Errorf("CSR signer: %w", err)
	}
	r := &clusterReconciler{c: mgr.GetClient(), reader: mgr.GetAPIReader(), authorities: auth, events: ev, interval: o.ProbeInterval, expand: o.Expand}
	trustOf := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []ctrl.Request {
		name, ok := strings.CutSuffix(obj.GetName(), v1alpha1.TrustConfigMapName(""))
		if !ok || name == "" {
			return nil
		}
		return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
	})
	err = ctrl.NewControllerManagedBy(mgr).Named("etcdcluster").
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: clusterWorkers}).
		For(&v1alpha1.EtcdCluster{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.ConfigMap{}, trustOf).
		WatchesRawSource(source.Channel(signed, &handler.EnqueueRequestForObject{})).
		Complete(r)
	if err != nil {
		return fmt.Errorf("EtcdCluster reconciler: %w", err)
	}
	return setupRevoker(mgr, auth, ev, o.Expand)
}

// replicaName names this process: the pod (the hostname in a pod) and its
// pid, which tells replicas apart when they share a host.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("etcdpki controller %s/%d", host, os.Getpid())
}

// announce says when this replica starts leading, and with
// --leader-elect under which Lease holder identity: the line an operator
// (and the HA tests) reads to know which replica signs.
func announce(ctx context.Context, mgr manager.Manager, o Options) {
	if o.Log == nil {
		return
	}
	select {
	case <-mgr.Elected():
	case <-ctx.Done():
		return
	}
	as := ""
	if o.LeaderElect {
		var l coordinationv1.Lease
		key := types.NamespacedName{Namespace: o.LeaseNamespace, Name: v1alpha1.LeaseName}
		if err := mgr.GetAPIReader().Get(ctx, key, &l); err == nil && l.Spec.HolderIdentity != nil {
			as = " as Lease holder " + *l.Spec.HolderIdentity
		}
	}
	fmt.Fprintf(o.Log, "%s: leading%s: signing CSRs and proving the EtcdClusters of %s\n", replicaName(), as, o.namespaces())
}
