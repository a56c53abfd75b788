package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// trustUpkeep is what keepTrust changed, and when it must look again.
type trustUpkeep struct {
	// changed says what was written, "" for nothing.
	changed string
	// next is when the CRL is due to be signed again; zero when unknown.
	next time.Time
}

// keepTrust keeps the trust ConfigMap current, as the CLI's CRL upkeep
// keeps the PKI directory's: ca.crt is the CA Secret's tls.crt, and the
// CRL is signed again (same entries, next number) past half its life. The
// agents install what it holds. A missing ConfigMap is made with ca.crt
// alone: the CRL is export's to hand over, never the controller's to
// invent.
func (r *clusterReconciler) keepTrust(ctx context.Context, cl *v1alpha1.EtcdCluster, a *ca.CA, spec *cluster.Spec, now time.Time) (trustUpkeep, error) {
	key := types.NamespacedName{Namespace: cl.Namespace, Name: v1alpha1.TrustConfigMapName(cl.Name)}
	var cm corev1.ConfigMap
	err := r.c.Get(ctx, key, &cm)
	if apierrors.IsNotFound(err) {
		cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: map[string]string{v1alpha1.TrustCA: string(a.CertPEM)}}
		if err := r.c.Create(ctx, &cm); err != nil {
			return trustUpkeep{}, fmt.Errorf("create ConfigMap %s: %w", key, err)
		}
		return trustUpkeep{changed: "made with " + v1alpha1.TrustCA}, errNoCRL
	}
	if err != nil {
		return trustUpkeep{}, fmt.Errorf("ConfigMap %s: %w", key, err)
	}
	var up trustUpkeep
	var what []string
	if !rotationOwnsTrust(cl) && cm.Data[v1alpha1.TrustCA] != string(a.CertPEM) {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[v1alpha1.TrustCA] = string(a.CertPEM)
		what = append(what, v1alpha1.TrustCA+" set to the CA Secret's "+v1alpha1.SecretCert)
	}
	der, why, crlErr := ResignCRL(a, cm.BinaryData[v1alpha1.TrustCRL], spec.CRLValidity(), now)
	if der != nil {
		if cm.BinaryData == nil {
			cm.BinaryData = map[string][]byte{}
		}
		cm.BinaryData[v1alpha1.TrustCRL] = der
		what = append(what, fmt.Sprintf("%s signed again (%s)", v1alpha1.TrustCRL, why))
	}
	if l, err := pki.ParseCRL(cm.BinaryData[v1alpha1.TrustCRL]); err == nil {
		up.next = l.ThisUpdate.Add(l.NextUpdate.Sub(l.ThisUpdate) / 2)
	}
	if len(what) > 0 {
		if err := r.c.Update(ctx, &cm); err != nil {
			return trustUpkeep{}, fmt.Errorf("update ConfigMap %s: %w", key, err)
		}
		up.changed = joinAnd(what)
	}
	if crlErr != nil {
		return up, fmt.Errorf("ConfigMap %s: %w", key, crlErr)
	}
	return up, nil
}

func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return fmt.Sprintf("%s and %s", parts[0], parts[1])
}
