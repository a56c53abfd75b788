package cluster

// File is the spec's YAML schema, as an operator writes it. Durations are
// strings so "365d" works. It is exported so that tools (and the test
// harness) can write specs that Parse reads back; empty fields keep the
// defaults.
type File struct {
	Name    string       `yaml:"name,omitempty"`
	PKIDir  string       `yaml:"pkiDir,omitempty"`
	Local   bool         `yaml:"local,omitempty"`
	CA      FileCA       `yaml:"ca,omitempty"`
	Certs   FileCerts    `yaml:"certs,omitempty"`
	CRL     FileCRL      `yaml:"crl,omitempty"`
	Nodes   []FileNode   `yaml:"nodes"`
	Clients []FileClient `yaml:"clients,omitempty"`
}

// FileCA is the spec's ca section.
type FileCA struct {
	CommonName   string `yaml:"commonName,omitempty"`
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty"`
	// Key is where the CA key is: "" for the file PKI/etcd/ca.key, or a
	// pkcs11: URI (RFC 7512) naming a key in a token.
	Key string `yaml:"key,omitempty"`
}

// FileCerts is the spec's certs section: settings for every leaf.
type FileCerts struct {
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty"`
	RenewBefore  string `yaml:"renewBefore,omitempty"`
}

// FileCRL is the spec's crl section: the certificate revocation list
// every member enforces.
type FileCRL struct {
	Validity string `yaml:"validity,omitempty"`
}

// FileNode is one entry of the spec's nodes section.
type FileNode struct {
	Name                string   `yaml:"name"`
	IPs                 []string `yaml:"ips"`
	DNS                 []string `yaml:"dns,omitempty"`
	ClientPort          int      `yaml:"clientPort,omitempty"`
	PeerPort            int      `yaml:"peerPort,omitempty"`
	ClientURLs          []string `yaml:"clientURLs,omitempty"`
	PeerURLs            []string `yaml:"peerURLs,omitempty"`
	Dir                 string   `yaml:"dir,omitempty"`
	DataDir             string   `yaml:"dataDir,omitempty"`
	InitialClusterState string   `yaml:"initialClusterState,omitempty"`
	Deploy              string   `yaml:"deploy,omitempty"`
	Restart             string   `yaml:"restart,omitempty"`
}

// FileClient is one entry of the spec's clients section.
type FileClient struct {
	Name         string   `yaml:"name"`
	CommonName   string   `yaml:"commonName,omitempty"`
	Organization []string `yaml:"organization,omitempty"`
	Dir          string   `yaml:"dir,omitempty"`
	Deploy       string   `yaml:"deploy,omitempty"`
	Restart      string   `yaml:"restart,omitempty"`
}

// MaxSpecSize caps how much of a spec file is read: a real spec is a few
// kilobytes, and a path that names /dev/zero or a huge file by mistake
// must fail at once instead of filling memory.
const MaxSpecSize = 1 << 20
