package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EtcdCluster is one external etcd cluster whose PKI etcdpki runs: its
// spec is the cluster spec file, its status every certificate's serial,
// expiry and proof on the wire.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=etcdc
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EtcdCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EtcdClusterSpec   `json:"spec"`
	Status EtcdClusterStatus `json:"status,omitempty"`
}

// EtcdClusterList is a list of EtcdClusters.
//
// +kubebuilder:object:root=true
type EtcdClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EtcdCluster `json:"items"`
}

// EtcdClusterSpec is the cluster spec (cluster.File) with the same field
// names. TestSpecMirrorsTheFile keeps the two in step.
type EtcdClusterSpec struct {
	// Name is the cluster's name and etcd's initial-cluster-token.
	Name string `json:"name,omitempty"`
	// PKIDir is where the admin host keeps the PKI; the controller and
	// the agents do not use it.
	PKIDir string `json:"pkiDir,omitempty"`
	// Local says the members run from their bundles under pkiDir.
	Local bool       `json:"local,omitempty"`
	CA    CASpec     `json:"ca,omitempty"`
	Certs CertsSpec  `json:"certs,omitempty"`
	CRL   CRLSpec    `json:"crl,omitempty"`
	Nodes []NodeSpec `json:"nodes"`
	// Clients are the extra clients, beside kube-apiserver and the
	// healthcheck client which every cluster has.
	Clients []ClientSpec `json:"clients,omitempty"`
	// Auth is etcd's access control, each certificate's CN its user.
	Auth AuthSpec `json:"auth,omitempty"`

	// Revocations are serials every member must refuse. They are not
	// part of the spec file (the CLI keeps them in PKI/revoked.json);
	// Cluster drops them before it parses the rest.
	Revocations []RevocationSpec `json:"revocations,omitempty"`
}

// AuthSpec is the spec's auth section.
type AuthSpec struct {
	// Enabled turns etcd's auth on (true) or keeps it off (false);
	// unset, a new PKI has it on and an existing one keeps what it has.
	Enabled *bool `json:"enabled,omitempty"`
}

// PermissionSpec is one grant of an extra client: a prefix or a key.
type PermissionSpec struct {
	Prefix string `json:"prefix,omitempty"`
	Key    string `json:"key,omitempty"`
	// +kubebuilder:validation:Enum=read;write;readwrite
	Access string `json:"access,omitempty"`
}

// CASpec is the spec's ca section.
type CASpec struct {
	CommonName string `json:"commonName,omitempty"`
	// +kubebuilder:validation:Enum=ecdsa;rsa
	KeyAlgorithm string `json:"keyAlgorithm,omitempty"`
	KeySize      int    `json:"keySize,omitempty"`
	// Validity is a duration such as "3650d".
	Validity string `json:"validity,omitempty"`
	// Key is "" for a CA key in the CA Secret, or the pkcs11: URI of a
	// key in a token.
	Key string `json:"key,omitempty"`
	// Rotation asks the controller for a staged CA rotation. It is not
	// part of the spec file; Cluster drops it before it parses the rest.
	Rotation *CARotationSpec `json:"rotation,omitempty"`
}

// CertsSpec is the spec's certs section: settings of every leaf.
type CertsSpec struct {
	// +kubebuilder:validation:Enum=ecdsa;rsa
	KeyAlgorithm string `json:"keyAlgorithm,omitempty"`
	KeySize      int    `json:"keySize,omitempty"`
	Validity     string `json:"validity,omitempty"`
	RenewBefore  string `json:"renewBefore,omitempty"`
}

// CRLSpec is the spec's crl section.
type CRLSpec struct {
	Validity string `json:"validity,omitempty"`
}

// NodeSpec is one etcd member.
type NodeSpec struct {
	Name string `json:"name"`
	// +kubebuilder:validation:MinItems=1
	IPs                 []string `json:"ips"`
	DNS                 []string `json:"dns,omitempty"`
	ClientPort          int      `json:"clientPort,omitempty"`
	PeerPort            int      `json:"peerPort,omitempty"`
	ClientURLs          []string `json:"clientURLs,omitempty"`
	PeerURLs            []string `json:"peerURLs,omitempty"`
	Dir                 string   `json:"dir,omitempty"`
	DataDir             string   `json:"dataDir,omitempty"`
	InitialClusterState string   `json:"initialClusterState,omitempty"`
	Deploy              string   `json:"deploy,omitempty"`
	Restart             string   `json:"restart,omitempty"`
}

// ClientSpec is one client of the cluster.
type ClientSpec struct {
	Name         string   `json:"name"`
	CommonName   string   `json:"commonName,omitempty"`
	Organization []string `json:"organization,omitempty"`
	Dir          string   `json:"dir,omitempty"`
	Deploy       string   `json:"deploy,omitempty"`
	Restart      string   `json:"restart,omitempty"`
	// Permissions are the client's etcd grants when auth is on; Shared
	// lets them reach kube-apiserver's prefix.
	Permissions []PermissionSpec `json:"permissions,omitempty"`
	Shared      bool             `json:"shared,omitempty"`
}

// EtcdClusterStatus is what the controller and the agents have proven.
type EtcdClusterStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Renewing and Degraded (with a reason).
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Certificates holds one entry per certificate, sorted by ID.
	// +listType=map
	// +listMapKey=id
	Certificates []CertificateStatus `json:"certificates,omitempty"`
	// Revocations: one entry per spec revocation, enforced once every
	// member was seen refusing the serial.
	// +listType=map
	// +listMapKey=serial
	Revocations []RevocationStatus `json:"revocations,omitempty"`
	// CARotation is the staged CA rotation in progress or last finished.
	CARotation *CARotationStatus `json:"caRotation,omitempty"`
	// Restart is the one restart the controller has granted, if any: the
	// named host's agent runs its restart command and reports it done.
	Restart *RestartGrant `json:"restart,omitempty"`
	// Members are the etcd members as the controller last saw them.
	// +listType=map
	// +listMapKey=name
	Members []MemberStatus `json:"members,omitempty"`
	// APIServerEtcdServers is the --etcd-servers kube-apiserver was last
	// restarted with after a membership change (or found with).
	APIServerEtcdServers string `json:"apiServerEtcdServers,omitempty"`
}

// CertificateStatus is one certificate as last proven.
type CertificateStatus struct {
	// ID is the certificate as etcdpki names it: "etcd-node-1/etcd-server".
	ID string `json:"id"`
	// Owner is the node or client holding it.
	Owner string `json:"owner"`
	// Serial is the certificate's serial number in hex.
	Serial   string       `json:"serial,omitempty"`
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
	// InEffect says the serial was seen in use on the wire at ProvenAt.
	InEffect bool         `json:"inEffect"`
	ProvenAt *metav1.Time `json:"provenAt,omitempty"`
	// ProvenBy is "agent" (after its renewal) or "controller" (its probe).
	ProvenBy string `json:"provenBy,omitempty"`
	// RenewedAt is when an agent last switched the pair on its host.
	RenewedAt *metav1.Time `json:"renewedAt,omitempty"`
	Message   string       `json:"message,omitempty"`
}

func init() {
	SchemeBuilder.Register(&EtcdCluster{}, &EtcdClusterList{})
}
