package controller

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// regrantAfter: a member whose granted restart is done but which does
// not show the stage's trust is given this long (a proof can fail while
// it elects or catches up) before its grant is cleared and it is
// restarted again (its agent had not installed the new ca.crt yet).
const regrantAfter = 30 * time.Second

// reason is the grant reason of a stage's restarts: the key under which
// each host's grant is asked for again until done.
func (cr *caRun) reason(stage string) string {
	return fmt.Sprintf("CA rotation %s, stage %s", cr.st.ID, stage)
}

// restartStage runs trust-both or finish: the trust ConfigMap's ca.crt
// as the stage wants it, then each member restarted by grant (followers
// first, the leader last after a hand-off to a member already through
// the stage) and proven on the wire, then each client with a bundle of
// its own restarted by grant. In finish the old CA's key then leaves the
// Secret.
func (cr *caRun) restartStage(ctx context.Context, stage, next string) (string, string, error) {
	k := cr.keys
	bundle := k.newCA().CertPEM
	if stage == v1alpha1.CAStageTrustBoth {
		bundle = append(append(append([]byte{}, k.oldCA().CertPEM...), '\n'), k.newCA().CertPEM...)
	}
	if err := cr.ensureTrust(ctx, bundle); err != nil {
		return "", "", err
	}
	cfg, err := k.probeConfig(k.current, cr.now)
	if err != nil {
		return "", "", err
	}
	spec := cr.inv.Spec
	var proven []string
	for _, n := range cr.order(ctx) {
		if _, ok := cr.st.Proof(stage, n.Name); ok {
			proven = append(proven, n.Name)
			continue
		}
		shown, perr := cr.proveTrust(ctx, n, stage)
		g := cr.cl.Status.Restart
		granted := g != nil && g.Host == n.Name && g.Reason == cr.reason(stage)
		if perr == nil {
			// Granted: its restart loaded the trust (the proof may pass
			// before the agent, waiting for the whole cluster's health,
			// reports it done; the next grant waits for that).
			cr.record(stage, n.Name, granted, shown)
			proven = append(proven, n.Name)
			continue
		}
		if granted && g.DoneAt != nil {
			if time.Since(g.DoneAt.Time) > regrantAfter {
				return "", fmt.Sprintf("%s: %s restarted but still not proven (%v): restarting it again", stage, n.Name, perr),
					clearRestart(ctx, cr.r.c, cr.key, n.Name, cr.reason(stage))
			}
			return "", fmt.Sprintf("%s: %s restarted, not yet proven: %v", stage, n.Name, perr), nil
		}
		res, err := grantRestart(ctx, cr.r.c, cr.r.reader, cr.key, spec, cfg, n.Name, cr.reason(stage), proven...)
		if err != nil || !res.Granted {
			return "", fmt.Sprintf("%s: %s: %s", stage, n.Name, res.Waiting), err
		}
		msg := fmt.Sprintf("%s: restart of %s granted", stage, n.Name)
		if res.HandOff != "" {
			msg += ", after handing leadership to " + res.HandOff
		}
		return "", msg, nil
	}
	if msg, err := cr.restartClients(ctx, stage); msg != "" || err != nil {
		return "", msg, err
	}
	if stage == v1alpha1.CAStageFinish {
		if err := cr.dropOld(ctx); err != nil {
			return "", "", err
		}
	}
	return next, "", nil
}

// order is the members, the leader last: it is restarted after
// leadership moved to a member already through the stage.
func (cr *caRun) order(ctx context.Context) []cluster.Node {
	cfg, err := cr.keys.probeConfig(cr.keys.current, cr.now)
	nodes := append([]cluster.Node{}, cr.inv.Spec.Nodes...)
	if err != nil {
		return nodes
	}
	h := probe.Health(ctx, cr.inv.Spec.ClientEndpoints(), cfg, runner.ProbeTimeout)
	for i, e := range h.Endpoints {
		if e.Status != nil && e.Status.MemberID == h.Leader && h.Leader != 0 {
			leader := nodes[i]
			return append(append(nodes[:i:i], nodes[i+1:]...), leader)
		}
	}
	return nodes
}

// restartClients restarts by grant every client with a bundle of its own
// (kube-apiserver reads --etcd-cafile only at start); a client without a
// restart template waits for the operator's annotation. It returns what
// it waits for, "" when every client is through the stage.
func (cr *caRun) restartClients(ctx context.Context, stage string) (string, error) {
	spec := cr.inv.Spec
	tlsCfg, err := cr.keys.probeConfig(cr.keys.current, cr.now)
	if err != nil {
		return "", err
	}
	for _, c := range clientsWithBundles(cr.inv) {
		if _, ok := cr.st.Proof(stage, c.Name); ok {
			continue
		}
		if c.Restart == "" {
			if cr.cl.Annotations[v1alpha1.AnnotationCAClientsRestarted] == cr.st.ID+"/"+stage {
				cr.record(stage, c.Name, true, "restarted by the operator (annotation "+v1alpha1.AnnotationCAClientsRestarted+")")
				continue
			}
			return fmt.Sprintf("%s: restart client %s on its hosts now (it reads its CA file only at start; the spec has no clients[].restart for it), then annotate the EtcdCluster %s=%s/%s",
				stage, c.Name, v1alpha1.AnnotationCAClientsRestarted, cr.st.ID, stage), nil
		}
		res, err := grantRestart(ctx, cr.r.c, cr.r.reader, cr.key, spec, tlsCfg, c.Name, cr.reason(stage))
		switch {
		case err != nil:
			return "", err
		case res.Done:
			cr.record(stage, c.Name, true, "its agent ran the restart command (exit 0) with the stage's ca.crt installed")
			if err := clearRestart(ctx, cr.r.c, cr.key, c.Name, cr.reason(stage)); err != nil {
				return "", err
			}
			continue
		case res.Granted:
			return fmt.Sprintf("%s: restart of client %s granted", stage, c.Name), nil
		}
		return fmt.Sprintf("%s: client %s: %s", stage, c.Name, res.Waiting), nil
	}
	return "", nil
}

// clientsWithBundles are the clients holding a bundle of their own (the
// healthcheck client lives in the node bundles).
func clientsWithBundles(inv *pki.Inventory) []cluster.Client {
	var out []cluster.Client
	for _, t := range inv.Targets {
		if c, ok := inv.Spec.Client(t.Owner); ok {
			if _, isNode := inv.Spec.Node(t.Owner); !isNode {
				out = append(out, c)
			}
		}
	}
	return out
}

// ensureTrust puts bundle into the trust ConfigMap's ca.crt; the agents
// install it.
func (cr *caRun) ensureTrust(ctx context.Context, bundle []byte) error {
	key := types.NamespacedName{Namespace: cr.cl.Namespace, Name: v1alpha1.TrustConfigMapName(cr.cl.Name)}
	return kube.RetryOnConflict(func() error {
		var cm corev1.ConfigMap
		if err := cr.r.reader.Get(ctx, key, &cm); err != nil {
			return fmt.Errorf("ConfigMap %s: %w", key, err)
		}
		if cm.Data[v1alpha1.TrustCA] == string(bundle) {
			return nil
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[v1alpha1.TrustCA] = string(bundle)
		return cr.r.c.Update(ctx, &cm)
	})
}

// proveTrust shows on the wire that member n loaded the stage's trust,
// as the CLI's ca rotate proves it: a probe client certificate from the
// new CA accepted on its client and peer ports, and in finish one from
// the old CA refused there.
func (cr *caRun) proveTrust(ctx context.Context, n cluster.Node, stage string) (string, error) {
	k := cr.keys
	newCfg, err := k.probeConfig(k.newCA(), cr.now)
	if err != nil {
		return "", err
	}
	var oldCfg = newCfg
	if stage == v1alpha1.CAStageFinish {
		if oldCfg, err = k.probeConfig(k.oldCA(), cr.now); err != nil {
			return "", err
		}
	}
	var shown []string
	for _, p := range []struct {
		name string
		addr func(cluster.Node) (string, error)
	}{{"client port", runner.ClientAddr}, {"peer port", runner.PeerAddr}} {
		addr, err := p.addr(n)
		if err != nil {
			return "", err
		}
		if err := runner.AcceptedAsClient(ctx, addr, newCfg); err != nil {
			return "", fmt.Errorf("%s %s refused a probe from the new CA: %w", p.name, addr, err)
		}
		shown = append(shown, p.name+" accepts the new CA")
		if stage != v1alpha1.CAStageFinish {
			continue
		}
		err = runner.AcceptedAsClient(ctx, addr, oldCfg)
		if pe, ok := errors.AsType[*probe.Error](err); !ok || pe.Kind != probe.KindClientCertRejected {
			return "", fmt.Errorf("%s %s: a probe from the old CA was not refused (%v)", p.name, addr, err)
		}
		shown[len(shown)-1] += " and refuses the old"
	}
	return strings.Join(shown, ", "), nil
}

// proveNewLeaves shows every member's client and peer ports serving a
// leaf that verifies against the new CA alone: reissue is in effect.
func (cr *caRun) proveNewLeaves(ctx context.Context) (map[string]string, error) {
	pair, err := cr.keys.newCA().ProbeClient(ca.ProbeValidity, cr.now)
	if err != nil {
		return nil, err
	}
	cfg := probe.ClientConfig(probe.CertPool([]*x509.Certificate{cr.keys.newCA().Cert}), &pair)
	out := map[string]string{}
	for _, p := range ProveMembers(ctx, cr.inv, cfg) {
		if p.Err != nil {
			return nil, fmt.Errorf("reissue: %s does not serve leaves of the new CA alone: %w", p.Node, p.Err)
		}
		var got []string
		for _, s := range p.Served {
			got = append(got, s.ID+" "+pki.ShortSerial(s.Serial))
		}
		out[p.Node] = "serves " + strings.Join(got, ", ") + ", verified against the new CA alone"
	}
	return out, nil
}

// record keeps host's proof of stage in the status being written.
func (cr *caRun) record(stage, host string, restarted bool, proof string) {
	at := metav1.Now()
	p := v1alpha1.CATrustProof{Stage: stage, Host: host, Restarted: restarted, Proof: proof, ProvenAt: &at}
	for i, q := range cr.st.Proofs {
		if q.Stage == stage && q.Host == host {
			cr.st.Proofs[i] = p
			return
		}
	}
	cr.st.Proofs = append(cr.st.Proofs, p)
}

// swap re-signs the CRL with the new CA (every bundle trusts it since
// trust-both, so the agents install it), then makes the new CA the
// Secret's tls.* and keeps the old under old-*, in one update: every
// signing from then on is the new CA's.
func (cr *caRun) swap(ctx context.Context) error {
	k := cr.keys
	key := types.NamespacedName{Namespace: cr.cl.Namespace, Name: v1alpha1.TrustConfigMapName(cr.cl.Name)}
	var cm corev1.ConfigMap
	if err := cr.r.reader.Get(ctx, key, &cm); err != nil {
		return fmt.Errorf("ConfigMap %s: %w", key, err)
	}
	if der := cm.BinaryData[v1alpha1.TrustCRL]; len(der) > 0 {
		out, changed, err := resignCRLWith(k.next, der, cr.inv.Spec.CRLValidity(), cr.now)
		if err != nil {
			return fmt.Errorf("reissue: sign the CRL with the new CA: %w", err)
		}
		if changed {
			cm.BinaryData[v1alpha1.TrustCRL] = out
			if err := cr.r.c.Update(ctx, &cm); err != nil {
				return fmt.Errorf("reissue: publish the CRL signed by the new CA: %w", err)
			}
		}
	}
	s := k.secret.DeepCopy()
	put(s.Data, k.current, v1alpha1.SecretOldCert, v1alpha1.SecretOldKey, v1alpha1.SecretOldKeyURI)
	put(s.Data, k.next, v1alpha1.SecretCert, v1alpha1.SecretKey, v1alpha1.SecretKeyURI)
	drop(s.Data, v1alpha1.SecretNextCert, v1alpha1.SecretNextKey, v1alpha1.SecretNextKeyURI)
	if err := cr.r.c.Update(ctx, s); err != nil {
		return fmt.Errorf("reissue: swap the CAs in Secret %s: %w", s.Name, err)
	}
	return nil
}

// dropOld removes the old CA from the Secret once every member is shown
// refusing it: the controller can mint no old-CA certificate after this.
// A token key is left in the token (the CLI relabels, never deletes).
func (cr *caRun) dropOld(ctx context.Context) error {
	if cr.keys.old == nil {
		return nil
	}
	s := cr.keys.secret.DeepCopy()
	drop(s.Data, v1alpha1.SecretOldCert, v1alpha1.SecretOldKey, v1alpha1.SecretOldKeyURI)
	if err := cr.r.c.Update(ctx, s); err != nil {
		return fmt.Errorf("finish: drop the old CA from Secret %s: %w", s.Name, err)
	}
	return nil
}

// setRotation writes status.caRotation, the field the rotation owns.
func (r *clusterReconciler) setRotation(ctx context.Context, key client.ObjectKey, st *v1alpha1.CARotationStatus) {
	_ = kube.RetryOnConflict(func() error {
		var cl v1alpha1.EtcdCluster
		if err := r.reader.Get(ctx, key, &cl); err != nil {
			return err
		}
		cl.Status.CARotation = st
		return r.c.Status().Update(ctx, &cl)
	})
}

// noteRotation sets the rotation's message only.
func (r *clusterReconciler) noteRotation(ctx context.Context, key client.ObjectKey, id, msg string) {
	_ = kube.RetryOnConflict(func() error {
		var cl v1alpha1.EtcdCluster
		if err := r.reader.Get(ctx, key, &cl); err != nil {
			return err
		}
		if cl.Status.CARotation == nil || cl.Status.CARotation.ID != id {
			return nil
		}
		cl.Status.CARotation.Message = msg
		return r.c.Status().Update(ctx, &cl)
	})
}

// updateCluster changes the EtcdCluster's object (annotations), again on
// a conflict.
func updateCluster(ctx context.Context, c client.Client, rd client.Reader, key client.ObjectKey, change func(*v1alpha1.EtcdCluster)) error {
	return kube.RetryOnConflict(func() error {
		var cl v1alpha1.EtcdCluster
		if err := rd.Get(ctx, key, &cl); err != nil {
			return err
		}
		change(&cl)
		return c.Update(ctx, &cl)
	})
}
