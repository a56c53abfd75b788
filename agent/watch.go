package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// call runs f against the apiserver, again with backoff while the
// apiserver cannot be reached (never on a refusal: that is the answer),
// and keeps the reachability gauge.
func (r *agentRun) call(ctx context.Context, f func(context.Context) error) error {
	var last error
	err := r.o.Backoff.DelayFunc().Until(ctx, true, false, func(ctx context.Context) (bool, error) {
		last = f(ctx)
		r.reached(last)
		if last == nil {
			return true, nil
		}
		if kube.Permanent(last) || r.o.Once && !r.everReached() {
			return false, last
		}
		return false, nil
	})
	if err != nil && last != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}

func (r *agentRun) everReached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reachedOnce
}

// reached records what an apiserver call said about reachability, and
// says so in the log and the metrics when it changes. A refusal came
// from the apiserver, so it is reachable.
func (r *agentRun) reached(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	ok := err == nil || kube.Permanent(err) || apierrors.IsConflict(err)
	r.mu.Lock()
	was, known := r.state.APIServerReachable, r.known
	r.state.APIServerReachable, r.known = ok, true
	if ok {
		r.reachedOnce = true
	}
	r.mu.Unlock()
	switch {
	case ok && known && !was:
		r.log.Step("apiserver", r.o.Owner).Done("%s: apiserver reachable again", r.o.Owner)
	case !ok && (!known || was):
		r.log.Step("apiserver", r.o.Owner).Err(err).Warn("%s: apiserver unreachable (%v): the pairs in place keep serving; retrying with backoff", r.o.Owner, err)
	default:
		return
	}
	r.writeMetrics()
}

// watchReach checks every ReachEvery that the apiserver answers, so the
// gauge and the log say it even while the agent only waits.
func (r *agentRun) watchReach(ctx context.Context) {
	t := time.NewTicker(r.o.ReachEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, err := r.cs.Discovery().ServerVersion()
			r.reached(err)
		}
	}
}

// watchCluster starts a pass whenever the EtcdCluster's spec,
// annotations (a renewal request) or restart grant change; its other
// status changes do not.
func (r *agentRun) watchCluster(ctx context.Context) {
	sel := fields.OneTermEqualSelector("metadata.name", r.o.Cluster)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			var l v1alpha1.EtcdClusterList
			err := r.cl.List(ctx, &l, &client.ListOptions{Namespace: r.o.Namespace, FieldSelector: sel, Raw: &o})
			return &l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return r.cl.Watch(ctx, &v1alpha1.EtcdClusterList{}, &client.ListOptions{Namespace: r.o.Namespace, FieldSelector: sel, Raw: &o})
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &v1alpha1.EtcdCluster{}, r.o.Resync, cache.Indexers{})
	_, _ = inf.AddEventHandler(clusterEvents(r.trigger))
	inf.RunWithContext(ctx)
}

// clusterEvents asks for a pass when the EtcdCluster's spec or
// annotations change, and once when the informer's first list sees it:
// the first pass runs while the informer starts, and a request stamped
// between that pass's read and the first list arrives as an Add, never
// as an Update (BenchmarkRotateThroughAgents found agents that slept
// through such a request until their next due date).
func clusterEvents(trigger func()) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { trigger() },
		UpdateFunc: func(oldObj, newObj any) {
			o, n := oldObj.(*v1alpha1.EtcdCluster), newObj.(*v1alpha1.EtcdCluster)
			if o.Generation != n.Generation || !equalMaps(o.Annotations, n.Annotations) || restartChanged(o, n) {
				trigger()
			}
		},
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// watchTrust installs the trust ConfigMap's CRL whenever it changes, at
// once and between renewals: etcd reads the CRL at every accepted
// connection, so no restart is needed. Only a node's bundle holds one.
func (r *agentRun) watchTrust(ctx context.Context) {
	name := v1alpha1.TrustConfigMapName(r.o.Cluster)
	f := informers.NewSharedInformerFactoryWithOptions(r.cs, r.o.Resync, informers.WithNamespace(r.o.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	inf := f.Core().V1().ConfigMaps().Informer()
	install := func(obj any) {
		// A ca.crt refused for a CA the last status read does not
		// name (a rotation's new CA, published after the status said
		// so) asks for a pass, which reads the status again and retries.
		if cm, ok := obj.(*corev1.ConfigMap); ok && !r.installTrust(cm) {
			r.trigger()
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: install, UpdateFunc: func(_, n any) { install(n) }})
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
}

// trustFromAPI is watchTrust's work done by a pass: level-based, in case
// an event came before the host was known.
func (r *agentRun) trustFromAPI(ctx context.Context, a *Agent) {
	var cm corev1.ConfigMap
	err := r.cl.Get(ctx, client.ObjectKey{Namespace: r.o.Namespace, Name: v1alpha1.TrustConfigMapName(r.o.Cluster)}, &cm)
	r.reached(err)
	if err == nil {
		r.installTrust(&cm)
	}
}

// installTrust puts the ConfigMap's ca.crt (every bundle) and crl.der
// (a node's) into the bundle, if the agent knows its bundle yet (the
// next pass does it otherwise). The CA bundle goes first: during a CA
// rotation the CRL is signed by the new CA, which only the new ca.crt
// holds. It says whether ca.crt was taken (or there was none to take).
func (r *agentRun) installTrust(cm *corev1.ConfigMap) (caOK bool) {
	r.mu.Lock()
	h, rot := r.host, r.rot
	r.mu.Unlock()
	if h == nil {
		return true
	}
	a := &Agent{Host: h, Log: r.log, HostLock: &r.lock}
	caOK = true
	if bundle := cm.Data[v1alpha1.TrustCA]; bundle != "" {
		changed, err := a.InstallCABundle([]byte(bundle), rot)
		if err != nil || changed {
			r.writeMetrics()
		}
		caOK = err == nil
	}
	if crl := cm.BinaryData[pki.CRLFile]; len(crl) > 0 && h.Bundle.Node {
		if err := a.InstallCRL(crl); err == nil {
			r.writeMetrics()
		}
	}
	return caOK
}

// sign is the Sign of a pass: a CSR for the target, created and waited
// for through the API.
func (r *agentRun) sign(ec *v1alpha1.EtcdCluster) Sign {
	return func(ctx context.Context, t pki.Target, csrPEM []byte) ([]byte, error) {
		req := kube.CSRFor(ec.Namespace, ec.Name, t, csrPEM)
		return kube.RequestCertificate(ctx, r.cs, req, r.o.Backoff, r.reached, func(c *certificatesv1.CertificateSigningRequest) {
			r.log.Step(StepSign, t.ID).Info("%s: CSR %s created (signer %s), waiting for its certificate", t.ID, c.Name, c.Spec.SignerName)
		})
	}
}
