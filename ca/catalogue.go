package ca

import (
	"crypto/x509"
	"time"

	"github.com/cloudflare/cfssl/config"

	"github.com/etcdpki/etcdpki/cluster"
)

// Kind is one entry of the certificate catalogue: what a certificate is
// for and which extended key usages it carries. The table below is the
// single source of truth; package pki expands it over a spec into every
// certificate and file of a cluster, as kubeadm's certlist is, and the
// CLI help is built from it.
type Kind struct {
	// Name is the catalogue name used on the command line and in errors.
	Name string
	// LongName says what it is for, for help and listings.
	LongName string
	// BaseName is the kubeadm file name without extension.
	BaseName string
	// CommonName is fixed for well-known clients, "" where it is the node's
	// or client's name.
	CommonName string
	// PerNode is true for certificates every member has: one per node,
	// in the node's bundle.
	PerNode bool
	// Client names the spec client (cluster.ClientAPIServer, ...) this
	// kind is issued for. A PerNode kind with a Client is that client's
	// certificate, held in every node bundle instead of a bundle of its
	// own (the healthcheck client); a kind with a Client and no PerNode
	// is one certificate in that client's bundle.
	Client string
	// PerClient is true for the kind every other spec client gets, one
	// each in its own bundle, named after the client.
	PerClient bool
	// ServerSANs is true when the certificate names the node's addresses.
	ServerSANs bool
	// Profile is the cfssl signing profile.
	Profile string
	// Usages are the extended key usages, the primary one first.
	Usages []x509.ExtKeyUsage
}

// Signing profiles. Server and peer certificates are both serverAuth and
// clientAuth, as kubeadm issues them: etcd members dial each other with
// their peer certificate and etcd's own gateway/grpc-proxy dials with the
// server one.
const (
	ProfileServer = "server"
	ProfileClient = "client"
)

// The catalogue. Order matters: per-node kinds first, as the bundles are
// laid out.
var (
	KindServer = Kind{Name: "etcd-server", LongName: "certificate for serving etcd's client port", BaseName: "server",
		PerNode: true, ServerSANs: true, Profile: ProfileServer, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	KindPeer = Kind{Name: "etcd-peer", LongName: "certificate for etcd members to talk to each other", BaseName: "peer",
		PerNode: true, ServerSANs: true, Profile: ProfileServer, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	KindHealthcheck = Kind{Name: "etcd-healthcheck-client", LongName: "client certificate for liveness probes to healthcheck etcd", BaseName: "healthcheck-client",
		CommonName: cluster.HealthcheckCommonName, PerNode: true, Client: cluster.ClientHealthcheck, Profile: ProfileClient, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	KindAPIServer = Kind{Name: "apiserver-etcd-client", LongName: "client certificate the apiserver uses to access etcd", BaseName: "apiserver-etcd-client",
		CommonName: cluster.APIServerCommonName, Client: cluster.ClientAPIServer, Profile: ProfileClient, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	KindClient = Kind{Name: "client", LongName: "client certificate for an extra etcd client", PerClient: true, Profile: ProfileClient,
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
)

// Catalogue lists every kind of leaf certificate etcdpki issues.
func Catalogue() []Kind {
	return []Kind{KindServer, KindPeer, KindHealthcheck, KindAPIServer, KindClient}
}

// kinds renders the profiles into cfssl policies, one policy per profile
// holding only that profile, so a signer can never fall back to another
// profile's usages.
var kinds = map[string]*config.Signing{
	ProfileServer: policy(ProfileServer, []string{"signing", "key encipherment", "server auth", "client auth"}),
	ProfileClient: policy(ProfileClient, []string{"signing", "key encipherment", "client auth"}),
}

// policy's expiry is a placeholder: Sign always sets notBefore/notAfter.
func policy(name string, usages []string) *config.Signing {
	p := &config.SigningProfile{Usage: usages, Expiry: 24 * time.Hour, ExpiryString: "24h"}
	return &config.Signing{Profiles: map[string]*config.SigningProfile{name: p}, Default: p}
}
