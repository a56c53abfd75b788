package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// CARotationSpec asks for a staged CA rotation.
type CARotationSpec struct {
	// ID names the rotation; a new ID starts a new one.
	ID string `json:"id"`
}

// The stages of a CA rotation, as status.caRotation.stage names them:
// the stage in progress, or done.
const (
	CAStagePrepare   = "prepare"
	CAStageTrustBoth = "trust-both"
	CAStageReissue   = "reissue"
	CAStageFinish    = "finish"
	CAStageDone      = "done"
)

// Keys of the CA Secret during a CA rotation, beside tls.crt and tls.key
// (or key-uri). From prepare until reissue the new CA waits under next-*;
// reissue swaps them (tls.* the new CA, old-* the old one, in one
// update), so that every signing from then on is the new CA's; finish
// drops old-* once every member is shown refusing the old CA.
const (
	SecretNextCert   = "next-tls.crt"
	SecretNextKey    = "next-tls.key"
	SecretNextKeyURI = "next-key-uri"
	SecretOldCert    = "old-tls.crt"
	SecretOldKey     = "old-tls.key"
	SecretOldKeyURI  = "old-key-uri"
)

// AnnotationCAClientsRestarted, set on the EtcdCluster to "ID/STAGE",
// says the operator restarted by hand, for that rotation's stage, the
// clients whose spec has no restart template (the CLI's
// --clients-restarted): the stage waits for it.
const AnnotationCAClientsRestarted = "etcdpki.io/ca-rotation-clients-restarted"

// CARotationStatus is a staged CA rotation's progress.
type CARotationStatus struct {
	ID string `json:"id"`
	// Stage is prepare, trust-both, reissue, finish or done.
	Stage   string `json:"stage,omitempty"`
	Message string `json:"message,omitempty"`
	// OldCA and NewCA are the serials (hex) of the CA replaced and of
	// its successor.
	OldCA string `json:"oldCA,omitempty"`
	NewCA string `json:"newCA,omitempty"`
	// StartedAt and FinishedAt bound the whole rotation.
	StartedAt  *metav1.Time `json:"startedAt,omitempty"`
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// ReissueRequestedAt is the renewal request reissue stamped: every
	// certificate renewed at or after it comes from the new CA.
	ReissueRequestedAt *metav1.Time `json:"reissueRequestedAt,omitempty"`
	// Proofs are each member's (and restarted client's) proof, per
	// stage, that it loaded the trust the stage wants.
	// +listType=map
	// +listMapKey=stage
	// +listMapKey=host
	Proofs []CATrustProof `json:"proofs,omitempty"`
}

// CATrustProof is what the wire showed of one host in one stage.
type CATrustProof struct {
	Stage string `json:"stage"`
	Host  string `json:"host"`
	// Restarted says a granted restart loaded the trust; false when the
	// host already showed it.
	Restarted bool         `json:"restarted,omitempty"`
	Proof     string       `json:"proof,omitempty"`
	ProvenAt  *metav1.Time `json:"provenAt,omitempty"`
}

// Proof returns the proof of host in stage.
func (s *CARotationStatus) Proof(stage, host string) (CATrustProof, bool) {
	for _, p := range s.Proofs {
		if p.Stage == stage && p.Host == host {
			return p, true
		}
	}
	return CATrustProof{}, false
}

// RestartGrant lets one host's agent restart its process.
type RestartGrant struct {
	// Host is the node or client whose agent may restart.
	Host      string       `json:"host"`
	Reason    string       `json:"reason,omitempty"`
	GrantedAt *metav1.Time `json:"grantedAt,omitempty"`
	// DoneAt is set by the agent when the restart finished.
	DoneAt *metav1.Time `json:"doneAt,omitempty"`
}
