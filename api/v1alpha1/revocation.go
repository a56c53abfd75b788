package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ConditionRevoking is True while a spec revocation is not yet enforced
// (its certificate renewed away, the CRL signed and published, every
// member seen refusing the serial).
const ConditionRevoking = "Revoking"

// RevocationSpec is one serial to revoke.
type RevocationSpec struct {
	// Serial is the certificate's serial number in hex.
	Serial string `json:"serial"`
	// Reason is an RFC 5280 reason name, such as keyCompromise.
	Reason string `json:"reason,omitempty"`
	// Target is the certificate's ID when it was one etcdpki manages,
	// so that the one in use is renewed before the CRL refuses it.
	Target string `json:"target,omitempty"`
	// NotAfter is when the revoked certificate expires, when known: a
	// CRL validity past it the serial leaves the CRL (RFC 5280 3.3),
	// which etcd reads whole on every accepted connection. Unknown, it
	// stays for good.
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
	// RequestedAt is when the revocation was asked for: the CRL entry's
	// revocation date.
	RequestedAt *metav1.Time `json:"requestedAt,omitempty"`
}

// RevocationStatus is one revocation's progress.
type RevocationStatus struct {
	Serial string `json:"serial"`
	// Enforced says every member was seen refusing the serial on its
	// client and peer ports, at ProvenAt.
	Enforced bool         `json:"enforced"`
	ProvenAt *metav1.Time `json:"provenAt,omitempty"`
	// Expired says the certificate expired a CRL validity ago and the
	// serial left the CRL.
	Expired bool   `json:"expired,omitempty"`
	Message string `json:"message,omitempty"`
}

// Revocation returns the status entry of the serial.
func (s *EtcdClusterStatus) Revocation(serial string) (RevocationStatus, bool) {
	for _, r := range s.Revocations {
		if r.Serial == serial {
			return r, true
		}
	}
	return RevocationStatus{}, false
}
