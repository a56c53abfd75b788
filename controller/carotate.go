package controller

// The staged CA rotation through the controller, the CLI's `etcdpki ca
// rotate` with the same stages, gates and proofs:
//
//	prepare     the next CA is made where the CA key lives (the Secret's
//	            next-tls.*, or a key in the token, next-key-uri)
//	trust-both  the trust ConfigMap's ca.crt = old + new; the agents
//	            install it; every member restarted by grant, one at a
//	            time, followers first, the leader after a hand-off; proof:
//	            a probe from the NEW CA accepted on its client and peer
//	            ports; then every client with a bundle (kube-apiserver)
//	            restarted by grant
//	reissue     the CRL signed again by the new CA, the Secret swapped
//	            (tls.* the new CA, old-tls.* the old) so every CSR is
//	            signed by the new CA; a renewal request for every
//	            certificate; no restart; proof: the agents' reports and
//	            both ports of every member serving leaves of the new CA
//	finish      ca.crt = new; restarts as in trust-both; proof: a probe
//	            from the OLD CA refused on both ports of every member, one
//	            from the new accepted; then old-tls.* dropped
//
// Where it stands lives in the API objects only (status.caRotation, the
// Secret's keys, the ConfigMap, status.restart), so a replica that takes
// over the Lease resumes at the step the killed one was in.

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// rotationPoll is how often a rotation in progress looks again: the
// agents' reports (a restart done, a renewal) change only the status,
// which does not start a reconcile.
const rotationPoll = time.Second

// EventCARotation is the reason of a CA rotation's Events: it started, a
// stage is done.
const EventCARotation = "CARotation"

// caRun is one step of a rotation: the cluster as read, its spec
// expanded, the CAs of the Secret.
type caRun struct {
	r    *clusterReconciler
	key  client.ObjectKey
	cl   *v1alpha1.EtcdCluster
	st   *v1alpha1.CARotationStatus
	inv  *pki.Inventory
	keys *caKeys
	now  time.Time
}

// rotateCA takes the next step of the cluster's CA rotation, if one is
// asked for or in progress, and says when to look again (0: nothing to
// do). A rotation in progress is finished before a new ID starts one.
func (r *clusterReconciler) rotateCA(ctx context.Context, key client.ObjectKey, inv *pki.Inventory) time.Duration {
	if inv == nil {
		return 0
	}
	var cl v1alpha1.EtcdCluster
	if err := r.reader.Get(ctx, key, &cl); err != nil {
		return 0
	}
	st, want := cl.Status.CARotation, cl.Spec.CA.Rotation
	switch {
	case st != nil && st.Stage != v1alpha1.CAStageDone && st.ID != "":
	case want == nil || want.ID == "" || st != nil && st.ID == want.ID:
		return 0
	default:
		now := metav1.Now()
		r.setRotation(ctx, key, &v1alpha1.CARotationStatus{ID: want.ID, Stage: v1alpha1.CAStagePrepare, StartedAt: &now, Message: "starting"})
		r.events.record(&cl, nil, corev1.EventTypeNormal, EventCARotation, "Rotate", fmt.Sprintf("CA rotation %s: started", want.ID))
		return rotationPoll
	}
	keys, err := r.loadKeys(ctx, &cl)
	if err != nil {
		r.noteRotation(ctx, key, st.ID, err.Error())
		return rotationPoll
	}
	cr := &caRun{r: r, key: key, cl: &cl, st: st.DeepCopy(), inv: inv, keys: keys, now: time.Now()}
	next, msg, err := cr.step(ctx)
	if err != nil {
		msg = err.Error()
		log.FromContext(ctx).Info("CA rotation step failed", "stage", st.Stage, "error", err)
	}
	if next != "" && next != st.Stage {
		cr.st.Stage, cr.st.Message = next, "stage "+st.Stage+" done"
		if next == v1alpha1.CAStageDone {
			at := metav1.Now()
			cr.st.FinishedAt, cr.st.Message = &at, fmt.Sprintf("done: CA serial %s replaced by %s; every member refuses the old CA on both ports", pki.ShortSerial(cr.st.OldCA), pki.ShortSerial(cr.st.NewCA))
		}
		r.setRotation(ctx, key, cr.st)
		r.events.record(&cl, nil, corev1.EventTypeNormal, EventCARotation, "Rotate", fmt.Sprintf("CA rotation %s: %s", st.ID, cr.st.Message))
		return rotationPoll
	}
	cr.st.Message = msg
	r.setRotation(ctx, key, cr.st)
	return rotationPoll
}

// step runs the stage in progress; next is the stage to move to once it
// is done ("" while it is not), msg what it waits for.
func (cr *caRun) step(ctx context.Context) (next, msg string, err error) {
	switch cr.st.Stage {
	case v1alpha1.CAStagePrepare:
		return cr.prepare(ctx)
	case v1alpha1.CAStageTrustBoth:
		return cr.restartStage(ctx, v1alpha1.CAStageTrustBoth, v1alpha1.CAStageReissue)
	case v1alpha1.CAStageReissue:
		return cr.reissue(ctx)
	case v1alpha1.CAStageFinish:
		return cr.restartStage(ctx, v1alpha1.CAStageFinish, v1alpha1.CAStageDone)
	}
	return "", "", fmt.Errorf("unknown stage %q", cr.st.Stage)
}

// prepare makes the next CA from the spec's CA settings, where the CA
// key lives, and keeps it in the Secret's next-* keys. A next CA found
// there (a replica killed after writing it) is kept.
func (cr *caRun) prepare(ctx context.Context) (string, string, error) {
	k := cr.keys
	if k.next == nil && k.old == nil {
		if err := checkRotatable(cr.inv); err != nil {
			return "", "", err
		}
		next, err := ca.CreateNext(cr.inv.Spec.CA, k.current, cr.now)
		if err != nil {
			return "", "", fmt.Errorf("prepare: %w", err)
		}
		s := k.secret.DeepCopy()
		put(s.Data, next, v1alpha1.SecretNextCert, v1alpha1.SecretNextKey, v1alpha1.SecretNextKeyURI)
		if err := cr.r.c.Update(ctx, s); err != nil {
			return "", "", fmt.Errorf("prepare: keep the next CA in Secret %s: %w", s.Name, err)
		}
		k.next = next
	}
	cr.st.OldCA, cr.st.NewCA = certx.Serial(k.oldCA().Cert), certx.Serial(k.newCA().Cert)
	return v1alpha1.CAStageTrustBoth, "", nil
}

// checkRotatable refuses a spec a rotation cannot go through: every
// member is restarted twice by its agent's restart command.
func checkRotatable(inv *pki.Inventory) error {
	for _, n := range inv.Spec.Nodes {
		if n.Restart == "" {
			return fmt.Errorf("node %s: a CA rotation restarts every member, but the spec has no restart command (set nodes[].restart)", n.Name)
		}
	}
	return nil
}

// reissue swaps the Secret so the new CA signs, stamps a renewal request
// for every certificate, and waits until every one is renewed and in
// effect and every member's ports serve leaves of the new CA alone.
func (cr *caRun) reissue(ctx context.Context) (string, string, error) {
	if !cr.keys.swapped() {
		return "", "swapping the CA Secret", cr.swap(ctx)
	}
	if cr.st.ReissueRequestedAt == nil {
		at := metav1.NewTime(cr.now.UTC().Truncate(time.Second))
		cr.st.ReissueRequestedAt = &at
		return "", "requesting a renewal of every certificate", nil
	}
	at := cr.st.ReissueRequestedAt.Time
	if req, err := cr.cl.Requested(); err != nil || !req.At.Equal(at) {
		err := updateCluster(ctx, cr.r.c, cr.r.reader, cr.key, func(cl *v1alpha1.EtcdCluster) { cl.Request(at, nil) })
		return "", "renewal of every certificate requested", err
	}
	var waiting []string
	for _, t := range cr.inv.Targets {
		e, ok := cr.cl.Status.Certificate(t.ID)
		if !ok || !e.InEffect || e.RenewedAt == nil || e.RenewedAt.Time.Before(at) {
			waiting = append(waiting, t.ID)
		}
	}
	if len(waiting) > 0 {
		return "", fmt.Sprintf("reissue: %d of %d certificates renewed from the new CA; waiting for %v", len(cr.inv.Targets)-len(waiting), len(cr.inv.Targets), waiting), nil
	}
	shown, err := cr.proveNewLeaves(ctx)
	if err != nil {
		return "", "", err
	}
	for node, proof := range shown {
		cr.record(v1alpha1.CAStageReissue, node, false, proof)
	}
	return v1alpha1.CAStageFinish, "", nil
}
