package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
)

// pass is one level-based run: read the EtcdCluster as it is, install
// the trust ConfigMap's CRL, renew what is due or requested (each
// reported as soon as it is proven), then report any entry of ours the
// status lacks. It returns how long until the next certificate is due.
func (r *agentRun) pass(ctx context.Context) (time.Duration, error) {
	var ec v1alpha1.EtcdCluster
	if err := r.call(ctx, func(ctx context.Context) error { return r.cl.Get(ctx, r.key, &ec) }); err != nil {
		return 0, fmt.Errorf("read EtcdCluster %s: %w", r.key, err)
	}
	a, inv, err := r.agentFor(&ec)
	if err != nil {
		return 0, err
	}
	if a.Bundle.Node {
		if joining, err := r.join(ctx, &ec, a); joining || err != nil {
			return JoinPoll, err
		}
	}
	r.trustFromAPI(ctx, a)
	if err := r.restartGranted(ctx, &ec, a, inv); err != nil {
		return 0, err
	}
	ps := a.Pending(either(revokedInUse(&ec), r.requested(&ec, inv)))
	_, err = a.RenewPending(ctx, ps, func(rn *Renewal) error { return r.report(ctx, &ec, rn) })
	if err != nil {
		r.event(ctx, &ec, corev1.EventTypeWarning, "RenewFailed", err.Error())
		return 0, err
	}
	if err := r.reportStale(ctx, a); err != nil {
		return 0, err
	}
	return r.nextDue(a), nil
}

// agentFor expands the EtcdCluster's spec (validated by the same cluster
// code as the spec file) and takes this host's bundle from it.
func (r *agentRun) agentFor(ec *v1alpha1.EtcdCluster) (*Agent, *pki.Inventory, error) {
	spec, err := ec.Cluster(cluster.Options{PKIDir: r.o.Dir})
	if err != nil {
		return nil, nil, err
	}
	inv := r.o.Expand(spec)
	h, err := NewHost(inv, r.o.Owner, r.o.Dir)
	if err != nil {
		return nil, nil, err
	}
	if h.Bundle.Node != r.o.Node {
		what := map[bool]string{true: "a node", false: "a client"}
		return nil, nil, input.Errorf("%s is %s in the spec of EtcdCluster %s, not %s: use --%s", r.o.Owner, what[h.Bundle.Node], r.key, what[r.o.Node],
			map[bool]string{true: "node", false: "client"}[h.Bundle.Node])
	}
	r.mu.Lock()
	r.host, r.rot = h, ec.Status.CARotation.DeepCopy()
	r.mu.Unlock()
	return &Agent{Host: h, Sign: r.sign(ec), Log: r.log, HostLock: &r.lock}, inv, nil
}

// requested says which of the host's targets the EtcdCluster's renewal
// request names and has not seen done: its entry has no RenewedAt at or
// after the request. A kill after the switch and before the report thus
// renews again: no local state, and it converges.
func (r *agentRun) requested(ec *v1alpha1.EtcdCluster, inv *pki.Inventory) func(pki.Target) (bool, string) {
	req, err := ec.Requested()
	if err != nil {
		r.log.Step("request", r.o.Owner).Err(err).Warn("%v; ignoring the request", err)
		return nil
	}
	if req.At.IsZero() {
		return nil
	}
	at, picked := req.At, inv.Targets
	if req.Targets != nil {
		picked, _ = pki.Select(inv.Targets, req.Targets)
	}
	return func(t pki.Target) (bool, string) {
		if !slices.ContainsFunc(picked, func(p pki.Target) bool { return p.ID == t.ID }) {
			return false, ""
		}
		if e, ok := ec.Status.Certificate(t.ID); ok && e.RenewedAt != nil && !e.RenewedAt.Time.Before(at) {
			return false, ""
		}
		return true, "renewal requested at " + at.UTC().Format(time.RFC3339Nano)
	}
}

// statusTime is t as the status stores it (metav1.Time keeps whole
// seconds), rounded up: a renewal made after a request must never read
// as made before it, as truncation would make a switch in the request's
// own second.
func statusTime(t time.Time) *metav1.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return &metav1.Time{Time: t}
}

// report writes one proven renewal to the status (retried while the
// apiserver is away: the renewal is done, its report must land) and
// records an Event.
func (r *agentRun) report(ctx context.Context, ec *v1alpha1.EtcdCluster, rn *Renewal) error {
	entry := v1alpha1.CertificateStatus{ID: rn.Target.ID, Owner: rn.Target.Owner, Serial: rn.NewSerial, NotAfter: &metav1.Time{Time: rn.NotAfter},
		InEffect: true, ProvenAt: statusTime(rn.ProvenAt), ProvenBy: v1alpha1.ProvenByAgent, RenewedAt: statusTime(rn.RenewedAt), Message: rn.Proof}
	if err := r.observe(ctx, entry); err != nil {
		return err
	}
	r.event(ctx, ec, corev1.EventTypeNormal, "Renewed", fmt.Sprintf("%s: serial %s -> %s, valid until %s; in effect: %s",
		rn.Target.ID, pki.ShortSerial(rn.OldSerial), pki.ShortSerial(rn.NewSerial), rn.NotAfter.UTC().Format(time.RFC3339), rn.Proof))
	return nil
}

func (r *agentRun) observe(ctx context.Context, entries ...v1alpha1.CertificateStatus) error {
	return r.call(ctx, func(ctx context.Context) error {
		return kube.UpdateStatus(ctx, r.cl, r.key, func(ec *v1alpha1.EtcdCluster) error {
			for _, e := range entries {
				ec.Status.Observe(e)
			}
			return nil
		})
	})
}

// reportStale proves and reports the host's pairs whose status entry is
// missing, names another serial (an agent killed before its report, a
// pair installed by hand or by the CLI) or is not shown in effect (a
// joining host's, reported before its member ran). It sets no RenewedAt: when the
// switch happened is not known, so a request still pending renews again.
func (r *agentRun) reportStale(ctx context.Context, a *Agent) error {
	var ec v1alpha1.EtcdCluster
	if err := r.call(ctx, func(ctx context.Context) error { return r.cl.Get(ctx, r.key, &ec) }); err != nil {
		return err
	}
	var stale []v1alpha1.CertificateStatus
	for _, t := range a.Targets {
		certPEM, _, err := pki.ReadTargetPair(t)
		c, perr := ca.ParseCert(certPEM)
		if err != nil || certPEM == nil || perr != nil {
			continue
		}
		if e, ok := ec.Status.Certificate(t.ID); ok && e.Serial == certx.Serial(c) && e.InEffect {
			continue
		}
		stale = append(stale, v1alpha1.CertificateStatus{ID: t.ID, Owner: t.Owner, Serial: certx.Serial(c), NotAfter: &metav1.Time{Time: c.NotAfter}, ProvenBy: v1alpha1.ProvenByAgent})
	}
	if stale == nil {
		return nil
	}
	proof, err := a.Prove(ctx)
	now := statusTime(time.Now())
	for i := range stale {
		stale[i].ProvenAt, stale[i].InEffect, stale[i].Message = now, err == nil, proof
		if err != nil {
			stale[i].Message = err.Error()
		}
	}
	return r.observe(ctx, stale...)
}

// nextDue is how long until the first of the host's pairs is due, at
// most Resync.
func (r *agentRun) nextDue(a *Agent) time.Duration {
	next := r.o.Resync
	for _, t := range a.Targets {
		certPEM, _, err := pki.ReadTargetPair(t)
		if err != nil || certPEM == nil {
			continue
		}
		if c, err := ca.ParseCert(certPEM); err == nil {
			next = min(next, max(time.Until(DueAt(c, a.Spec.Leaf.RenewBefore)), time.Second))
		}
	}
	return next
}

// event records an Event on the EtcdCluster. Best effort: the status
// carries the result, an Event only tells the story.
func (r *agentRun) event(ctx context.Context, ec *v1alpha1.EtcdCluster, typ, reason, msg string) {
	const maxMessage = 1024 // the apiserver's limit on an Event's message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: ec.Name + ".", Namespace: ec.Namespace},
		InvolvedObject: corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "EtcdCluster", Name: ec.Name,
			Namespace: ec.Namespace, UID: ec.UID, ResourceVersion: ec.ResourceVersion},
		Reason: reason, Message: msg, Type: typ, Count: 1, FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: "etcdpki-agent", Host: r.o.Owner},
		ReportingController: "etcdpki.io/agent", ReportingInstance: r.o.Owner, Action: reason,
	}
	if _, err := r.cs.CoreV1().Events(ec.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		r.log.Step("event", r.o.Owner).Err(err).Warn("%s: event %s not recorded: %v", r.o.Owner, reason, err)
	}
}
