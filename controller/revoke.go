package controller

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Revocation condition reasons and Events.
const (
	ReasonRevocationPending = "RevocationPending"
	ReasonRevocationsDone   = "AllRevocationsEnforced"
	ReasonNoRevocations     = "NoRevocations"
	EventCRLPublished       = "CRLPublished"
	EventRevoked            = "RevocationEnforced"
	EventRevocationBlocked  = "RevocationBlocked"
)

// DefaultRevokePoll is how often a revocation in progress is looked at
// again: the agents' renewal and CRL install are seen only through the
// status and the wire. Half a second is a handshake pair per port, cheap
// for etcd, and keeps the request-to-refusal time near what the agents
// take.
const DefaultRevokePoll = 500 * time.Millisecond

// slowRevokePoll paces a revocation requested over recentRevocation ago
// and still not enforced (a member down, an agent away): a fleet's
// stuck revocations cost 20 handshakes per cluster every 5 s, not every
// half second.
const (
	slowRevokePoll   = 5 * time.Second
	recentRevocation = 2 * time.Minute
)

// recent says some item in progress, whose members all answered, was
// requested within recentRevocation, or at an unknown time (another
// operation's entry).
func recent(items []*revItem, now time.Time) bool {
	for _, it := range items {
		if (it.state == "waiting" || it.state == "ready") && !it.unreachable {
			if it.spec.RequestedAt == nil || now.Sub(it.spec.RequestedAt.Time) < recentRevocation {
				return true
			}
		}
	}
	return false
}

// revoker enforces an EtcdCluster's spec.revocations, level-based, with
// every step's state in API objects, so a leader killed at any step
// leaves the next one to redo it: (1) a serial in use (a status
// certificate entry carries it) waits until its agent renewed it and the
// new serial is proven in effect; (2) the CRL, the published one's
// entries with the ready serials and without the expired ones, is signed
// with the next number and published in the trust ConfigMap; (3) the
// agents install it; (4) every member's client and peer port is seen
// refusing a probe minted with the serial and accepting its twin; only
// then is the entry enforced in status.
type revoker struct {
	c           client.Client
	reader      client.Reader
	authorities *authorities
	events      eventRecorder
	expand      func(*cluster.Spec) *pki.Inventory
	poll        time.Duration
}

// revItem is one spec revocation as this pass found it.
type revItem struct {
	spec   v1alpha1.RevocationSpec
	serial string
	n      *big.Int
	// state: "invalid", "expired", "waiting", "ready" or "enforced".
	state string
	msg   string
	at    *metav1.Time
	// unreachable says the last proof could not reach some port: a
	// member down is not a CRL a moment from being installed, so it is
	// looked at again at the slow pace.
	unreachable bool
}

// Reconcile takes every revocation of the cluster as far as it can go.
func (r *revoker) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var cl v1alpha1.EtcdCluster
	if err := r.c.Get(ctx, req.NamespacedName, &cl); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if len(cl.Spec.Revocations) == 0 && len(cl.Status.Revocations) == 0 {
		return reconcile.Result{}, nil
	}
	now := time.Now()
	spec, err := cl.Cluster(cluster.Options{})
	if err != nil {
		return r.write(ctx, &cl, nil, "spec: "+err.Error())
	}
	a, err := r.authorities.get(ctx, cl.Namespace, cl.Name)
	if err != nil {
		return r.write(ctx, &cl, nil, err.Error())
	}
	inv := r.expand(spec)
	items := assess(&cl, inv, a, spec.CRLValidity(), now)
	number, err := r.publish(ctx, &cl, a, items, spec.CRLValidity(), now)
	if err != nil {
		return r.write(ctx, &cl, items, err.Error())
	}
	r.prove(ctx, &cl, inv, a, items, number, now)
	return r.write(ctx, &cl, items, "")
}

// assess sorts the spec's revocations into their states from the
// status: bad input, expired, a certificate still in use, ready for the
// CRL, or already enforced.
func assess(cl *v1alpha1.EtcdCluster, inv *pki.Inventory, a *ca.CA, validity time.Duration, now time.Time) []*revItem {
	var out []*revItem
	for _, e := range cl.Spec.Revocations {
		it := &revItem{spec: e}
		out = append(out, it)
		n, s, ok := ParseSerial(e.Serial)
		it.n, it.serial = n, s
		if _, known := pki.Reasons[reasonOrDefault(e.Reason)]; !ok || !known {
			it.state, it.msg = "invalid", fmt.Sprintf("serial %q, reason %q: a positive hexadecimal serial and one of %s", e.Serial, e.Reason, pki.ReasonNames())
			continue
		}
		if n.Cmp(a.Cert.SerialNumber) == 0 {
			it.state, it.msg = "invalid", "serial "+s+" is the CA's own: a CA leaves the trust through ca rotate, not the CRL"
			continue
		}
		st, _ := cl.Status.Revocation(s)
		switch {
		case RevocationExpired(e, validity, now):
			it.state, it.msg, it.at = "expired", "the certificate expired "+e.NotAfter.UTC().Format(time.RFC3339)+": the serial left the CRL", st.ProvenAt
			continue
		case st.Enforced:
			it.state, it.msg, it.at = "enforced", st.Message, st.ProvenAt
			continue
		}
		it.state = "ready"
		for _, c := range cl.Status.Certificates {
			// A certificate of a node or client the spec no longer has
			// (a removed member's) is in use nowhere: its entry lingers.
			if _, inSpec := inv.Target(c.ID); !inSpec {
				continue
			}
			if _, cs, ok := ParseSerial(c.Serial); ok && cs == s {
				it.state, it.msg = "waiting", fmt.Sprintf("in use as %s: waiting for its agent to renew it and prove the new serial in effect", c.ID)
			}
		}
		if _, inSpec := inv.Target(e.Target); it.state == "ready" && inSpec {
			if c, ok := cl.Status.Certificate(e.Target); !ok || !c.InEffect {
				it.state, it.msg = "waiting", fmt.Sprintf("%s: its renewed certificate is not yet proven in effect", e.Target)
			}
		}
	}
	return out
}

// publish signs and publishes the CRL the items need, when it differs
// from the published one, and returns the number of the CRL in the
// ConfigMap. An absent or foreign CRL is an error, as in keepTrust: an
// empty CRL in place of a lost one would un-revoke every serial.
func (r *revoker) publish(ctx context.Context, cl *v1alpha1.EtcdCluster, a *ca.CA, items []*revItem, validity time.Duration, now time.Time) (*big.Int, error) {
	key := types.NamespacedName{Namespace: cl.Namespace, Name: v1alpha1.TrustConfigMapName(cl.Name)}
	var cm corev1.ConfigMap
	// From the cache (the etcdcluster controller watches ConfigMaps): a
	// fleet's pending revocations must not spend the client's rate on
	// reads; a stale copy only makes the update conflict and retry.
	if err := r.c.Get(ctx, key, &cm); err != nil {
		return nil, fmt.Errorf("ConfigMap %s: %w", key, err)
	}
	der := cm.BinaryData[v1alpha1.TrustCRL]
	if len(der) == 0 {
		return nil, errNoCRL
	}
	l, err := pki.ParseCRL(der)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s: crl.der: %w", key, err)
	}
	if !crlSignedBy(l, a) {
		return nil, fmt.Errorf("ConfigMap %s: crl.der is not signed by CA %q", key, a.Cert.Subject.CommonName)
	}
	var revoke, expired []v1alpha1.RevocationSpec
	for _, it := range items {
		switch it.state {
		case "ready", "enforced":
			revoke = append(revoke, it.spec)
		case "expired":
			expired = append(expired, it.spec)
		}
	}
	entries, changed := CRLEntries(l, revoke, expired, now)
	if !changed {
		return l.Number, nil
	}
	number := big.NewInt(1)
	if l.Number != nil {
		number.Add(l.Number, number)
	}
	next, err := a.SignCRL(entries, number, validity, now)
	if err != nil {
		return nil, err
	}
	cm.BinaryData[v1alpha1.TrustCRL] = next
	if err := r.c.Update(ctx, &cm); err != nil {
		return nil, fmt.Errorf("publish CRL number %s in ConfigMap %s: %w", number, key, err)
	}
	r.events.record(cl, nil, corev1.EventTypeNormal, EventCRLPublished, "SignCRL",
		fmt.Sprintf("CRL number %s published in ConfigMap %s: %d serials (was %d)", number, key.Name, len(entries), len(l.RevokedCertificateEntries)))
	return number, nil
}

// prove looks, for every ready item, whether every member refuses its
// serial; those that are proven become enforced.
func (r *revoker) prove(ctx context.Context, cl *v1alpha1.EtcdCluster, inv *pki.Inventory, a *ca.CA, items []*revItem, number *big.Int, now time.Time) {
	nodes := make([]string, len(inv.Spec.Nodes))
	for i, n := range inv.Spec.Nodes {
		nodes[i] = n.Name
	}
	addrs := func(name string) (string, string, error) {
		n, _ := inv.Spec.Node(name)
		c, err := runner.ClientAddr(n)
		if err != nil {
			return "", "", err
		}
		p, err := runner.PeerAddr(n)
		return c, p, err
	}
	for _, it := range items {
		if it.state != "ready" {
			continue
		}
		vs, bad := ProveRefused(ctx, nodes, addrs, a, it.n, now)
		it.unreachable = slices.ContainsFunc(vs, func(v Refusal) bool { return v.Err != nil })
		if bad != "" {
			it.msg = fmt.Sprintf("in CRL number %s; not yet refused everywhere: %s", number, bad)
			continue
		}
		at := metav1.NewTime(time.Now())
		it.state, it.at = "enforced", &at
		it.msg = fmt.Sprintf("refused on all %d client and peer ports of %d members (CRL number %s), a fresh probe accepted", len(vs), len(nodes), number)
		what := it.serial
		if it.spec.Target != "" {
			what = it.spec.Target + " serial " + pki.ShortSerial(it.serial)
		}
		r.events.record(cl, nil, corev1.EventTypeNormal, EventRevoked, "Revoke", fmt.Sprintf("%s (%s): %s", what, reasonOrDefault(it.spec.Reason), it.msg))
		revocationsEnforced.WithLabelValues(cl.Namespace, cl.Name).Inc()
	}
}

// write merges the items into status.revocations (the fields this
// reconciler owns: the entries and the Revoking condition) and says when
// to look again: soon while one is in progress, at the next expiry
// otherwise. problem, when set, is why no item could move this pass.
func (r *revoker) write(ctx context.Context, cl *v1alpha1.EtcdCluster, items []*revItem, problem string) (reconcile.Result, error) {
	if items == nil {
		for _, e := range cl.Spec.Revocations {
			_, s, _ := ParseSerial(e.Serial)
			st, _ := cl.Status.Revocation(s)
			items = append(items, &revItem{spec: e, serial: s, state: map[bool]string{true: "enforced", false: "waiting"}[st.Enforced], msg: st.Message, at: st.ProvenAt})
		}
	}
	entries, cond, pending := revocationStatus(items, problem)
	revocationsPending.WithLabelValues(cl.Namespace, cl.Name).Set(float64(pending))
	key := client.ObjectKeyFromObject(cl)
	err := kube.RetryOnConflict(func() error {
		var now v1alpha1.EtcdCluster
		if err := r.reader.Get(ctx, key, &now); err != nil {
			return err
		}
		before := now.Status.DeepCopy()
		now.Status.Revocations = entries
		cond.ObservedGeneration = now.Generation
		if meta.SetStatusCondition(&now.Status.Conditions, cond) && cond.Status == metav1.ConditionTrue && problem != "" {
			r.events.record(&now, nil, corev1.EventTypeWarning, EventRevocationBlocked, "Revoke", cond.Message)
		}
		if equality.Semantic.DeepEqual(before, &now.Status) {
			return nil
		}
		return r.c.Status().Update(ctx, &now)
	})
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("revocations of EtcdCluster %s: %w", key, client.IgnoreNotFound(err))
	}
	switch {
	case problem != "":
		// The CA or the trust ConfigMap is missing: their own changes
		// bring the cluster back, the interval is a safety net.
		return reconcile.Result{RequeueAfter: 10 * time.Second}, nil
	case pending > 0 && recent(items, time.Now()):
		return reconcile.Result{RequeueAfter: r.poll}, nil
	case pending > 0:
		return reconcile.Result{RequeueAfter: slowRevokePoll}, nil
	}
	return reconcile.Result{RequeueAfter: nextExpiry(cl)}, nil
}

// revocationStatus is the status entries of the items, the Revoking
// condition and how many are in progress.
func revocationStatus(items []*revItem, problem string) ([]v1alpha1.RevocationStatus, metav1.Condition, int) {
	var entries []v1alpha1.RevocationStatus
	var waiting []string
	pending := 0
	for _, it := range items {
		e := v1alpha1.RevocationStatus{Serial: it.serial, Message: it.msg}
		switch it.state {
		case "enforced":
			e.Enforced, e.ProvenAt = true, it.at
		case "expired":
			e.Expired = true
		default:
			if problem != "" {
				e.Message = problem
			}
			if it.state != "invalid" {
				pending++ // an invalid entry waits for the spec to change
			}
			waiting = append(waiting, it.spec.Serial+": "+e.Message)
		}
		if e.Serial == "" || slices.ContainsFunc(entries, func(o v1alpha1.RevocationStatus) bool { return o.Serial == e.Serial }) {
			continue // a malformed or repeated serial: its first entry speaks for it
		}
		entries = append(entries, e)
	}
	c := metav1.Condition{Type: v1alpha1.ConditionRevoking, Status: metav1.ConditionFalse, Reason: ReasonNoRevocations, Message: "no revocation in spec.revocations"}
	switch {
	case len(waiting) > 0:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonRevocationPending, strings.Join(waiting, "; ")
	case len(items) > 0:
		c.Reason, c.Message = ReasonRevocationsDone, fmt.Sprintf("every one of the %d revocations is enforced on every member (or expired)", len(items))
	}
	return entries, c, pending
}

// nextExpiry is when the first revoked certificate leaves the CRL, so
// that it leaves at once; an hour when none will.
func nextExpiry(cl *v1alpha1.EtcdCluster) time.Duration {
	next := time.Hour
	spec, err := cl.Cluster(cluster.Options{})
	if err != nil {
		return next
	}
	for _, e := range cl.Spec.Revocations {
		if e.NotAfter != nil {
			if d := time.Until(e.NotAfter.Add(spec.CRLValidity())); d > 0 {
				next = min(next, d+time.Second)
			}
		}
	}
	return next
}

// setupRevoker registers the revoker: on a spec change (a revocation
// added), and on a change of status.certificates (an agent's renewal of
// a certificate waiting to be revoked), with a few clusters at once so
// that one whose members do not answer holds no other back.
func setupRevoker(mgr manager.Manager, auth *authorities, ev eventRecorder, expand func(*cluster.Spec) *pki.Inventory) error {
	r := &revoker{c: mgr.GetClient(), reader: mgr.GetAPIReader(), authorities: auth, events: ev, expand: expand, poll: DefaultRevokePoll}
	changed := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*v1alpha1.EtcdCluster)
		n, ok2 := e.ObjectNew.(*v1alpha1.EtcdCluster)
		return !ok1 || !ok2 || o.Generation != n.Generation || !equality.Semantic.DeepEqual(o.Status.Certificates, n.Status.Certificates)
	}}
	err := ctrl.NewControllerManagedBy(mgr).Named("revocations").
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: clusterWorkers}).
		For(&v1alpha1.EtcdCluster{}, builder.WithPredicates(changed)).
		Complete(r)
	if err != nil {
		return fmt.Errorf("revocation reconciler: %w", err)
	}
	return nil
}
