package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RevocationSpec is one serial to revoke.
type RevocationSpec struct {
	// Serial is the certificate's serial number in hex.
	Serial string `json:"serial"`
	// Reason is an RFC 5280 reason name, such as keyCompromise.
	Reason string `json:"reason,omitempty"`
	// Target is the certificate's ID when it was one etcdpki manages,
	// so that the one in use is renewed before the CRL refuses it.
	Target string `json:"target,omitempty"`
}

// RevocationStatus is one revocation's progress.
type RevocationStatus struct {
	Serial string `json:"serial"`
	// Enforced says every member was seen refusing the serial on its
	// client and peer ports, at ProvenAt.
	Enforced bool         `json:"enforced"`
	ProvenAt *metav1.Time `json:"provenAt,omitempty"`
	Message  string       `json:"message,omitempty"`
}
