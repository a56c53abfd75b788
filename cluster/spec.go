// Package cluster reads and validates the cluster spec: the one YAML file
// that describes an external etcd cluster, its CA, its members and the
// clients that talk to it. Every etcdpki command starts from a Spec.
//
// It owns the spec types (spec.go), the YAML schema (file.go) and its
// parser (load.go, members.go), spec errors with file, line and field
// (error.go), the one validator for names, DNS names, IPs and subjects
// shared with issue (validate.go), the one set of key rules (keys.go),
// durations (duration.go), deploy and restart templates (template.go)
// and the spec made from flags (flags.go).
package cluster

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Defaults chosen to match kubeadm, so a bundle drops into a control plane
// node without surprises.
const (
	// DefaultCACommonName is kubeadm's etcd CA name.
	DefaultCACommonName = "etcd-ca"
	// DefaultCAValidity is ten years, as kubeadm: the CA is rotated by hand
	// in stages, so it should outlive every cluster it signs for.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultLeafValidity is one year, as kubeadm: long enough that a missed
	// cron run is harmless, short enough that a leaked key ages out.
	DefaultLeafValidity = 365 * 24 * time.Hour
	// DefaultRenewBefore is 30 days: a month of cron runs that can fail
	// before anything expires.
	DefaultRenewBefore = 30 * 24 * time.Hour
	// DefaultCRLValidity is the CRL's nextUpdate, a week after it is
	// signed: rotate re-signs it at half of that, so a cron run that
	// fails for three days still leaves a CRL that is current.
	DefaultCRLValidity = 7 * 24 * time.Hour
	// DefaultClientPort and DefaultPeerPort are etcd's IANA ports.
	DefaultClientPort = 2379
	DefaultPeerPort   = 2380
	// DefaultNodeDir is where kubeadm keeps its PKI on a host; node bundles
	// are laid out to drop straight into it.
	DefaultNodeDir = "/etc/kubernetes/pki"
	// DefaultDataDir is etcd's conventional data directory on a host.
	DefaultDataDir = "/var/lib/etcd"
	// DefaultPKIDir is used when neither the spec nor --dir names one.
	DefaultPKIDir = "pki"
)

// Key algorithms understood by the spec.
const (
	AlgECDSA = "ecdsa"
	AlgRSA   = "rsa"
)

// Well-known client names. The apiserver and healthcheck clients always
// exist; the spec may add others.
const (
	ClientAPIServer   = "kube-apiserver"
	ClientHealthcheck = "healthcheck"
)

// Spec is a validated cluster description. Paths in it are absolute.
type Spec struct {
	// Name is the cluster's name; it is also etcd's initial-cluster-token.
	Name string
	// PKIDir holds the CA and every bundle etcdpki writes.
	PKIDir string
	// Local says the members run on this machine straight from their
	// bundles under PKIDir (the demo and the tests), rather than on hosts
	// the bundles are copied to.
	Local bool
	CA    CA
	Leaf  Leaf
	// CRL holds the revocation list's settings.
	CRL   CRL
	Nodes []Node
	// Clients always holds the apiserver and healthcheck clients first.
	Clients []Client
	// Auth is etcd's access control: off unless the spec turns it on.
	Auth Auth
	// File is the spec file this came from, "" when built from flags.
	File string
	// Source is that file's fields as written, before defaults (export
	// hands them to the cluster as the EtcdCluster's spec); nil when
	// built from flags.
	Source *File
}

// CA describes the etcd certificate authority.
type CA struct {
	CommonName string
	Key        KeySpec
	Validity   time.Duration
	// Token, when set, holds the CA key in a PKCS#11 token (the spec's
	// ca.key URI); nil keeps it in the file PKI/etcd/ca.key.
	Token *PKCS11URI
}

// KeySpec is a key algorithm and size (bits for RSA, curve size for ECDSA).
type KeySpec struct {
	Algorithm string
	Size      int
}

// String renders the key spec as "ecdsa-256".
func (k KeySpec) String() string { return fmt.Sprintf("%s-%d", k.Algorithm, k.Size) }

// Leaf holds the settings shared by every leaf certificate.
type Leaf struct {
	Key         KeySpec
	Validity    time.Duration
	RenewBefore time.Duration
}

// CRL holds the settings of the certificate revocation list.
type CRL struct {
	// Validity is how long after signing the CRL's nextUpdate is; zero
	// means DefaultCRLValidity.
	Validity time.Duration
}

// CRLValidity is the CRL's validity, the default when the spec sets none.
func (s *Spec) CRLValidity() time.Duration {
	if s.CRL.Validity > 0 {
		return s.CRL.Validity
	}
	return DefaultCRLValidity
}

// Node is one etcd member.
type Node struct {
	Name       string
	IPs        []net.IP
	DNSNames   []string
	ClientPort int
	PeerPort   int
	// ClientURLs and PeerURLs are the advertised URLs.
	ClientURLs []string
	PeerURLs   []string
	// Dir is where the node's files live on its host (its
	// /etc/kubernetes/pki); in a local spec, the bundle itself.
	Dir     string
	DataDir string
	// InitialClusterState forces "new" or "existing"; "" lets init decide.
	InitialClusterState string
	// Deploy and Restart are command templates run by rotate.
	Deploy  string
	Restart string
	// Line is the spec line the node was declared on, for error messages.
	Line int
}

// Client is a named client certificate holder.
type Client struct {
	Name string
	// CommonName is an extra client's subject (its name by default); ""
	// for the built-in clients, whose subjects the catalogue fixes.
	CommonName   string
	Organization []string
	// Dir is where the client's files live on its host.
	Dir     string
	Deploy  string
	Restart string
	// Permissions are an extra client's etcd grants; Shared says they
	// may reach kube-apiserver's prefix.
	Permissions []Permission
	Shared      bool
}

// IP returns the node's first IP, the one its URLs advertise.
func (n Node) IP() net.IP { return n.IPs[0] }

// ListenClientURLs lists the URLs etcd listens on for clients.
func (n Node) ListenClientURLs(local bool) []string {
	urls := urlsFor(n.IPs, n.ClientPort)
	if !local && !containsLoopback(n.IPs) {
		// As kubeadm does: the member's own healthchecks use 127.0.0.1.
		urls = append(urls, fmt.Sprintf("https://127.0.0.1:%d", n.ClientPort))
	}
	return urls
}

// ListenPeerURLs lists the URLs etcd listens on for peers.
func (n Node) ListenPeerURLs() []string { return urlsFor(n.IPs, n.PeerPort) }

// CertDir is the directory on the node's host holding ca.crt, server.crt...
func (n Node) CertDir() string { return filepath.Join(n.Dir, "etcd") }

// Node returns the node with the given name.
func (s *Spec) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Client returns the client with the given name.
func (s *Spec) Client(name string) (Client, bool) {
	for _, c := range s.Clients {
		if c.Name == name {
			return c, true
		}
	}
	return Client{}, false
}

// ClientEndpoints lists every member's first advertised client URL, in
// spec order: what kube-apiserver's --etcd-servers should say.
func (s *Spec) ClientEndpoints() []string {
	var eps []string
	for _, n := range s.Nodes {
		eps = append(eps, n.ClientURLs[0])
	}
	return eps
}

// InitialCluster renders etcd's initial-cluster value for all members.
func (s *Spec) InitialCluster() string {
	var parts []string
	for _, n := range s.Nodes {
		for _, u := range n.PeerURLs {
			parts = append(parts, n.Name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// ServerSANs returns the hosts a node's server and peer certificates must
// name, in kubeadm's order: node IPs, DNS names, node name, localhost,
// 127.0.0.1, ::1 (duplicates removed).
func (n Node) ServerSANs() []string {
	var hosts []string
	for _, ip := range n.IPs {
		hosts = append(hosts, ip.String())
	}
	hosts = append(hosts, n.DNSNames...)
	hosts = append(hosts, n.Name, "localhost", "127.0.0.1", "::1")
	return dedupe(hosts)
}

func urlsFor(ips []net.IP, port int) []string {
	var urls []string
	for _, ip := range ips {
		urls = append(urls, "https://"+net.JoinHostPort(ip.String(), fmt.Sprint(port)))
	}
	return urls
}

func containsLoopback(ips []net.IP) bool {
	for _, ip := range ips {
		if ip.Equal(net.IPv4(127, 0, 0, 1)) {
			return true
		}
	}
	return false
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
