package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// clusterReconciler keeps one EtcdCluster's trust ConfigMap current and
// writes its status from what its members serve: on every change to the
// cluster or its ConfigMap, after each signing, and every interval.
type clusterReconciler struct {
	c client.Client
	// reader reads past the cache: a status write that conflicted must
	// start again from the object as it is now.
	reader      client.Reader
	authorities *authorities
	events      eventRecorder
	interval    time.Duration
	probes      probeCerts
	// expand is Options.Expand (pki.New, from cmd).
	expand func(*cluster.Spec) *pki.Inventory
}

// Reconcile reads the cluster, keeps its trust, proves its members and
// writes the status. Nothing it finds wrong is an error of the
// reconcile: it is the status' Degraded condition, and the next pass
// comes after the interval.
func (r *clusterReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var cl v1alpha1.EtcdCluster
	if err := r.c.Get(ctx, req.NamespacedName, &cl); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	now := time.Now()
	after := r.interval
	var o observation
	var inv *pki.Inventory
	spec, err := cl.Cluster(cluster.Options{})
	if err != nil {
		o.specErr = err
	} else {
		inv = r.expand(spec)
		o, after = r.observe(ctx, &cl, inv, now)
	}
	if err := r.writeStatus(ctx, req, inv, o, now); err != nil {
		return reconcile.Result{}, err
	}
	if d := r.rotateCA(ctx, req.NamespacedName, inv); d > 0 {
		after = min(after, d)
	}
	return reconcile.Result{RequeueAfter: after}, nil
}

// observe loads the CA, keeps the trust and proves the members. after is
// when to look again: the interval, or sooner when the CRL falls due.
func (r *clusterReconciler) observe(ctx context.Context, cl *v1alpha1.EtcdCluster, inv *pki.Inventory, now time.Time) (observation, time.Duration) {
	var o observation
	after := r.interval
	a, err := r.authorities.get(ctx, cl.Namespace, cl.Name)
	if err != nil {
		o.caErr = err
		return o, after
	}
	up, err := r.keepTrust(ctx, cl, a, inv.Spec, now)
	o.trustErr = err
	if up.changed != "" {
		r.events.record(cl, nil, corev1.EventTypeNormal, EventTrust, "KeepTrust", fmt.Sprintf("ConfigMap %s: %s", v1alpha1.TrustConfigMapName(cl.Name), up.changed))
	}
	if !up.next.IsZero() {
		// A second past the moment, so the CRL is due when we look.
		after = min(after, max(time.Until(up.next)+time.Second, time.Second))
	}
	cfg, err := r.probes.config(a, now)
	if err != nil {
		o.caErr = err
		return o, after
	}
	r.rotationRoots(ctx, cl, cfg)
	m := r.members(ctx, cl, inv, cfg)
	o.memberReason, o.memberMsg = m.reason, m.message
	if m.busy {
		after = min(after, MemberPoll)
	}
	o.proofs = ProveMembers(ctx, inv.Without(m.notVoting...), cfg)
	countProofs(cl.Namespace, cl.Name, o.proofs)
	return o, after
}

// writeStatus applies the observation to the latest EtcdCluster and
// writes its status, again on a conflict (an agent reporting at the same
// moment): Observe merges by ProvenAt, so neither write loses the other.
func (r *clusterReconciler) writeStatus(ctx context.Context, req reconcile.Request, inv *pki.Inventory, o observation, now time.Time) error {
	var notes []note
	var cl v1alpha1.EtcdCluster
	err := kube.RetryOnConflict(func() error {
		if err := r.reader.Get(ctx, req.NamespacedName, &cl); err != nil {
			return err
		}
		if inv == nil {
			inv = &pki.Inventory{}
		}
		notes = applyObservation(&cl, inv, o, now)
		return r.c.Status().Update(ctx, &cl)
	})
	if err != nil {
		return fmt.Errorf("status of EtcdCluster %s: %w", req.NamespacedName, client.IgnoreNotFound(err))
	}
	for _, n := range notes {
		typ := corev1.EventTypeNormal
		if n.warning {
			typ = corev1.EventTypeWarning
		}
		r.events.record(&cl, nil, typ, n.reason, "Probe", n.text)
	}
	log.FromContext(ctx).V(1).Info("status written", "changes", len(notes))
	return nil
}
