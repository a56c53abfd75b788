package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// CARotationSpec asks for a staged CA rotation.
type CARotationSpec struct {
	// ID names the rotation; a new ID starts a new one.
	ID string `json:"id"`
}

// CARotationStatus is a staged CA rotation's progress.
type CARotationStatus struct {
	ID string `json:"id"`
	// Stage is prepare, trust-both, reissue, finish or done.
	Stage   string `json:"stage,omitempty"`
	Message string `json:"message,omitempty"`
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
