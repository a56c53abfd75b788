package controller

import (
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// Event reasons on an EtcdCluster.
const (
	EventApproved   = "CSRApproved"
	EventSigned     = "CSRSigned"
	EventDenied     = "CSRDenied"
	EventFailed     = "CSRFailed"
	EventTrust      = "TrustUpdated"
	EventProven     = "Proven"
	EventTrustError = "TrustNotKept"
)

// eventRecorder records the controller's steps as Events on the
// EtcdCluster they concern (the CSR as the related object), so that
// `kubectl describe etcdcluster` tells the story.
//
// events.k8s.io/v1 folds an Event into an earlier one with the same
// type, reason, action and objects (a series, which keeps the first
// note), so every kind of change has a reason of its own: a CSR is its
// own related object, and a condition's reason is its type and status
// (conditionEventReason).
type eventRecorder struct{ r events.EventRecorder }

func (e eventRecorder) record(cl *v1alpha1.EtcdCluster, related *certificatesv1.CertificateSigningRequest, typ, reason, action, note string) {
	if cl == nil || e.r == nil {
		return // a CSR for an unknown cluster: there is nothing to record it on
	}
	if related == nil {
		e.r.Eventf(cl, nil, typ, reason, action, "%s", note)
		return
	}
	e.r.Eventf(cl, related, typ, reason, action, "%s", note)
}

func (e eventRecorder) approved(cl *v1alpha1.EtcdCluster, csr *certificatesv1.CertificateSigningRequest, id string) {
	decided(clusterOrNil(cl), "approved")
	e.record(cl, csr, corev1.EventTypeNormal, EventApproved, "Approve", fmt.Sprintf("CSR %s from %s for %s: approved", csr.Name, csr.Spec.Username, id))
}

func (e eventRecorder) signed(cl *v1alpha1.EtcdCluster, csr *certificatesv1.CertificateSigningRequest, id string, certPEM []byte) {
	decided(clusterOrNil(cl), "signed")
	serial := ""
	if c, err := ca.ParseCert(certPEM); err == nil {
		serial = certx.Serial(c)
	}
	e.record(cl, csr, corev1.EventTypeNormal, EventSigned, "Sign", fmt.Sprintf("CSR %s for %s: signed, serial %s", csr.Name, id, pki.ShortSerial(serial)))
}

func (e eventRecorder) denied(cl *v1alpha1.EtcdCluster, csr *certificatesv1.CertificateSigningRequest, reason string) {
	decided(clusterOrNil(cl), "denied")
	e.record(cl, csr, corev1.EventTypeWarning, EventDenied, "Deny", fmt.Sprintf("CSR %s from %s: denied: %s", csr.Name, csr.Spec.Username, reason))
}

func (e eventRecorder) failed(cl *v1alpha1.EtcdCluster, csr *certificatesv1.CertificateSigningRequest, reason string) {
	decided(clusterOrNil(cl), "failed")
	e.record(cl, csr, corev1.EventTypeWarning, EventFailed, "Sign", fmt.Sprintf("CSR %s from %s: not signed: %s", csr.Name, csr.Spec.Username, reason))
}

// conditionEventReason is the Event reason of a condition change: the
// type when it turns True ("Degraded"), "Not" and the type when False
// ("NotReady").
func conditionEventReason(typ string, status bool) string {
	if status {
		return typ
	}
	return "Not" + typ
}

// clusterOrNil keeps a nil *EtcdCluster nil as an interface.
func clusterOrNil(cl *v1alpha1.EtcdCluster) interface {
	GetNamespace() string
	GetName() string
} {
	if cl == nil {
		return nil
	}
	return cl
}
