package v1alpha1

import (
	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// The API group and version.
const (
	Group   = "etcdpki.io"
	Version = "v1alpha1"
	Kind    = "EtcdCluster"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: Group, Version: Version}
	// SchemeBuilder registers the types of this API with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the types of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Signer names for the certificates.k8s.io/v1 CSR API: one per signing
// profile, so that the CSR's signer says which kind of certificate it
// asks for and RBAC can grant signing per signer.
const (
	SignerServer = "etcdpki.io/etcd-server"
	SignerPeer   = "etcdpki.io/etcd-peer"
	SignerClient = "etcdpki.io/etcd-client"
)

// Annotations. A CSR names its cluster and the certificate it asks for;
// the controller checks the latter against the requester's identity and
// never trusts it alone. A renewal request is a timestamp and the targets
// on the EtcdCluster, as kubectl rollout restart stamps a Deployment.
const (
	AnnotationCluster          = "etcdpki.io/cluster"
	AnnotationTarget           = "etcdpki.io/target"
	AnnotationRenewRequestedAt = "etcdpki.io/renew-requested-at"
	AnnotationRenewTargets     = "etcdpki.io/renew-targets"
	// RenewAll is the renew-targets value that names every certificate.
	RenewAll = "all"
)

// Identities. An agent authenticates to the apiserver as the node or
// client whose certificates it renews; the CSR's spec.username is what
// the signer checks the request against.
const (
	NodeUserPrefix   = "etcdpki:node:"
	ClientUserPrefix = "etcdpki:client:"
	// AgentGroup is the group every agent identity is in; the agents'
	// RBAC is bound to it.
	AgentGroup = "etcdpki:agents"
)

// NodeUser is the identity of the agent on a node's host.
func NodeUser(node string) string { return NodeUserPrefix + node }

// ClientUser is the identity of the agent holding a client certificate
// (kube-apiserver's on each apiserver host).
func ClientUser(name string) string { return ClientUserPrefix + name }

// Keys of the CA Secret (type kubernetes.io/tls) and the trust ConfigMap.
const (
	SecretCert = "tls.crt"
	SecretKey  = "tls.key"
	// SecretKeyURI replaces SecretKey when the CA key is in a PKCS#11
	// token: the key's URI, never the key.
	SecretKeyURI = "key-uri"
	TrustCA      = "ca.crt"
	TrustCRL     = "crl.der"
)

// LeaseName is the controller's leader-election Lease, in its namespace.
const LeaseName = "etcdpki-controller"

// CASecretName is the Secret holding the cluster's CA.
func CASecretName(cluster string) string { return cluster + "-etcd-ca" }

// TrustConfigMapName is the ConfigMap every agent installs its trust from.
func TrustConfigMapName(cluster string) string { return cluster + "-etcd-trust" }

// Condition types of an EtcdCluster.
const (
	ConditionReady    = "Ready"
	ConditionRenewing = "Renewing"
	ConditionDegraded = "Degraded"
)

// Who proved a certificate in effect.
const (
	ProvenByAgent      = "agent"
	ProvenByController = "controller"
)

// SignerFor is the signer a certificate of the catalogue kind (ca.Kind's
// Name) is requested from: server and peer certificates each have their
// own, every client kind shares one.
func SignerFor(kind string) string {
	switch kind {
	case "etcd-server":
		return SignerServer
	case "etcd-peer":
		return SignerPeer
	}
	return SignerClient
}

// Usages is the exact set of key usages a CSR to the signer must ask for
// (the k8s names of the cfssl profiles etcdpki signs with): server and
// peer certificates are both serverAuth and clientAuth, as kubeadm issues
// them.
func Usages(signer string) []certificatesv1.KeyUsage {
	u := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment}
	if signer == SignerServer || signer == SignerPeer {
		u = append(u, certificatesv1.UsageServerAuth)
	}
	return append(u, certificatesv1.UsageClientAuth)
}
