package cluster

// File is the spec's YAML schema, as an operator writes it. Durations are
// strings so "365d" works. It is exported so that tools (and the test
// harness) can write specs that Parse reads back; empty fields keep the
// defaults. The JSON names are the YAML names: an EtcdCluster's spec
// (api/v1alpha1) is this schema.
type File struct {
	Name    string       `yaml:"name,omitempty" json:"name,omitempty"`
	PKIDir  string       `yaml:"pkiDir,omitempty" json:"pkiDir,omitempty"`
	Local   bool         `yaml:"local,omitempty" json:"local,omitempty"`
	CA      FileCA       `yaml:"ca,omitempty" json:"ca,omitempty"`
	Certs   FileCerts    `yaml:"certs,omitempty" json:"certs,omitempty"`
	CRL     FileCRL      `yaml:"crl,omitempty" json:"crl,omitempty"`
	Nodes   []FileNode   `yaml:"nodes" json:"nodes"`
	Clients []FileClient `yaml:"clients,omitempty" json:"clients,omitempty"`
	Auth    FileAuth     `yaml:"auth,omitempty" json:"auth,omitempty"`
}

// FileCA is the spec's ca section.
type FileCA struct {
	CommonName   string `yaml:"commonName,omitempty" json:"commonName,omitempty"`
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty" json:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty" json:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty" json:"validity,omitempty"`
	// Key is where the CA key is: "" for the file PKI/etcd/ca.key, or a
	// pkcs11: URI (RFC 7512) naming a key in a token.
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
}

// FileCerts is the spec's certs section: settings for every leaf.
type FileCerts struct {
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty" json:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty" json:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty" json:"validity,omitempty"`
	RenewBefore  string `yaml:"renewBefore,omitempty" json:"renewBefore,omitempty"`
}

// FileCRL is the spec's crl section: the certificate revocation list
// every member enforces.
type FileCRL struct {
	Validity string `yaml:"validity,omitempty" json:"validity,omitempty"`
}

// FileNode is one entry of the spec's nodes section.
type FileNode struct {
	Name                string   `yaml:"name" json:"name"`
	IPs                 []string `yaml:"ips" json:"ips"`
	DNS                 []string `yaml:"dns,omitempty" json:"dns,omitempty"`
	ClientPort          int      `yaml:"clientPort,omitempty" json:"clientPort,omitempty"`
	PeerPort            int      `yaml:"peerPort,omitempty" json:"peerPort,omitempty"`
	ClientURLs          []string `yaml:"clientURLs,omitempty" json:"clientURLs,omitempty"`
	PeerURLs            []string `yaml:"peerURLs,omitempty" json:"peerURLs,omitempty"`
	Dir                 string   `yaml:"dir,omitempty" json:"dir,omitempty"`
	DataDir             string   `yaml:"dataDir,omitempty" json:"dataDir,omitempty"`
	InitialClusterState string   `yaml:"initialClusterState,omitempty" json:"initialClusterState,omitempty"`
	Deploy              string   `yaml:"deploy,omitempty" json:"deploy,omitempty"`
	Restart             string   `yaml:"restart,omitempty" json:"restart,omitempty"`
}

// FileClient is one entry of the spec's clients section.
type FileClient struct {
	Name         string   `yaml:"name" json:"name"`
	CommonName   string   `yaml:"commonName,omitempty" json:"commonName,omitempty"`
	Organization []string `yaml:"organization,omitempty" json:"organization,omitempty"`
	Dir          string   `yaml:"dir,omitempty" json:"dir,omitempty"`
	Deploy       string   `yaml:"deploy,omitempty" json:"deploy,omitempty"`
	Restart      string   `yaml:"restart,omitempty" json:"restart,omitempty"`
	// Permissions are the client's etcd grants when auth is on; Shared
	// lets them reach kube-apiserver's prefix.
	Permissions []FilePermission `yaml:"permissions,omitempty" json:"permissions,omitempty"`
	Shared      bool             `yaml:"shared,omitempty" json:"shared,omitempty"`
}

// MaxSpecSize caps how much of a spec file is read: a real spec is a few
// kilobytes, and a path that names /dev/zero or a huge file by mistake
// must fail at once instead of filling memory.
const MaxSpecSize = 1 << 20
