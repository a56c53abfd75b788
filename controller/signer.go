package controller

import (
	"context"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// Condition reasons the signer writes on a CSR.
const (
	ReasonApproved = "EtcdpkiSpecMatch"
	ReasonDenied   = "EtcdpkiMismatch"
	ReasonFailed   = "EtcdpkiSignFailed"
)

// signer reconciles the CSRs that name an etcdpki signer: each is
// approved and signed once, or denied with the reason, and never signed
// again once it holds a certificate.
type signer struct {
	c           client.Client
	ns          servedNS
	authorities *authorities
	events      eventRecorder
	// signed tells the status prober a cluster has a new certificate.
	signed chan<- event.GenericEvent
	// reader reads past the cache (the API reader).
	reader client.Reader
	// replica names this replica in the approvals it writes, so that
	// an operator can tell which one signed.
	replica string
	// expand is Options.Expand (pki.New, from cmd).
	expand func(*cluster.Spec) *pki.Inventory
}

// ours reports whether a CSR names one of our signers.
func ours(signerName string) bool {
	return signerName == v1alpha1.SignerServer || signerName == v1alpha1.SignerPeer || signerName == v1alpha1.SignerClient
}

// pending reports whether the signer has still something to do for a
// CSR: no certificate, not denied, not failed.
func pending(csr *certificatesv1.CertificateSigningRequest) bool {
	if !ours(csr.Spec.SignerName) || len(csr.Status.Certificate) > 0 {
		return false
	}
	return !hasCondition(csr, certificatesv1.CertificateDenied) && !hasCondition(csr, certificatesv1.CertificateFailed)
}

func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Reconcile takes one CSR one step: decide, then deny, or approve and
// sign. It reads everything again each time, so a replica that takes
// over after a leader died mid-way (approved, not yet signed) finishes
// the job: an approved CSR without a certificate is matched again and
// signed.
func (s *signer) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var csr certificatesv1.CertificateSigningRequest
	if err := s.c.Get(ctx, req.NamespacedName, &csr); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !pending(&csr) {
		return reconcile.Result{}, nil
	}
	cl, d, err := s.decide(ctx, &csr)
	if err != nil || (cl == nil && !d.Denied()) {
		return reconcile.Result{}, err
	}
	if d.Denied() {
		return reconcile.Result{}, s.deny(ctx, &csr, cl, d.Reason)
	}
	if !hasCondition(&csr, certificatesv1.CertificateApproved) {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: ReasonApproved,
			Message:        fmt.Sprintf("%s: exactly what the spec of %s/%s gives %s", s.replica, cl.Namespace, cl.Name, d.Target.ID),
			LastUpdateTime: metav1.Now(),
		})
		if err := s.c.SubResource("approval").Update(ctx, &csr); err != nil {
			return reconcile.Result{}, fmt.Errorf("approve CSR %s: %w", csr.Name, err)
		}
		s.events.approved(cl, &csr, d.Target.ID)
	}
	a, err := s.authorities.get(ctx, cl.Namespace, cl.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	certPEM, err := a.SignCSR(d.Request, csr.Spec.Request)
	if err != nil {
		return reconcile.Result{}, s.fail(ctx, &csr, cl, err)
	}
	// The update carries the resourceVersion read above: if another
	// replica signed meanwhile it conflicts, and the next reconcile sees
	// the certificate and stops. The apiserver also refuses to change a
	// certificate once set.
	csr.Status.Certificate = certPEM
	if err := s.c.Status().Update(ctx, &csr); err != nil {
		return reconcile.Result{}, fmt.Errorf("store the certificate of CSR %s: %w", csr.Name, err)
	}
	s.events.signed(cl, &csr, d.Target.ID, certPEM)
	select {
	case s.signed <- event.GenericEvent{Object: cl}:
	default: // the prober runs on its interval anyway
	}
	return reconcile.Result{}, nil
}

// decide finds the CSR's cluster and matches the CSR against its spec.
// A nil cluster and no denial means the CSR is another controller's: its
// annotation names another namespace.
func (s *signer) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (*v1alpha1.EtcdCluster, Decision, error) {
	ref := csr.Annotations[v1alpha1.AnnotationCluster]
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, deny("annotation %s is %q, want NAMESPACE/NAME of an EtcdCluster", v1alpha1.AnnotationCluster, ref), nil
	}
	if !s.ns.has(ns) {
		log.FromContext(ctx).V(1).Info("CSR for a cluster in another namespace: left to its controller", "cluster", ref)
		return nil, Decision{}, nil
	}
	cl := &v1alpha1.EtcdCluster{}
	key := types.NamespacedName{Namespace: ns, Name: name}
	err := s.c.Get(ctx, key, cl)
	if apierrors.IsNotFound(err) && s.reader != nil {
		// A denial is for good: ask the apiserver, not only a cache that
		// may not have seen a cluster exported a moment ago.
		err = s.reader.Get(ctx, key, cl)
	}
	if apierrors.IsNotFound(err) {
		return nil, deny("unknown cluster %s", ref), nil
	} else if err != nil {
		return nil, Decision{}, err
	}
	spec, err := cl.Cluster(cluster.Options{})
	if err != nil {
		return cl, deny("cluster %s: its spec is not valid: %v", ref, err), nil
	}
	return cl, Match(s.expand(spec), CSR{
		Username: csr.Spec.Username, SignerName: csr.Spec.SignerName, Usages: usageNames(csr.Spec.Usages),
		Request: csr.Spec.Request, Target: csr.Annotations[v1alpha1.AnnotationTarget],
	}), nil
}

func usageNames(us []certificatesv1.KeyUsage) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = string(u)
	}
	return out
}

// deny writes the Denied condition with the reason. An approved CSR
// (approved by someone else, or by us before the spec changed) cannot be
// denied: it is marked Failed instead, and never signed.
func (s *signer) deny(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, cl *v1alpha1.EtcdCluster, reason string) error {
	if hasCondition(csr, certificatesv1.CertificateApproved) {
		return s.fail(ctx, csr, cl, fmt.Errorf("%s", reason))
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: ReasonDenied, Message: reason, LastUpdateTime: metav1.Now(),
	})
	if err := s.c.SubResource("approval").Update(ctx, csr); err != nil {
		return fmt.Errorf("deny CSR %s: %w", csr.Name, err)
	}
	s.events.denied(cl, csr, reason)
	return nil
}

// fail marks an approved CSR Failed: it will not be signed.
func (s *signer) fail(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, cl *v1alpha1.EtcdCluster, err error) error {
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: ReasonFailed, Message: err.Error(), LastUpdateTime: metav1.Now(),
	})
	if uerr := s.c.Status().Update(ctx, csr); uerr != nil {
		return fmt.Errorf("mark CSR %s failed (%v): %w", csr.Name, err, uerr)
	}
	s.events.failed(cl, csr, err.Error())
	return nil
}
