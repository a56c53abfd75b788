package etcdtest

import (
	"fmt"
	"net"
	"strconv"
)

// SpecFile is the cluster spec YAML the harness writes and hands to
// cluster.Parse and issue.Init, exactly as an operator's file would be.
// Options.Edit may change it before it is written; fields left empty keep
// etcdpki's defaults.
type SpecFile struct {
	Name    string       `yaml:"name"`
	PKIDir  string       `yaml:"pkiDir,omitempty"`
	Local   bool         `yaml:"local"`
	CA      SpecCA       `yaml:"ca,omitempty"`
	Certs   SpecCerts    `yaml:"certs,omitempty"`
	Nodes   []SpecNode   `yaml:"nodes"`
	Clients []SpecClient `yaml:"clients,omitempty"`
}

// SpecCA is the spec's ca section.
type SpecCA struct {
	CommonName   string `yaml:"commonName,omitempty"`
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty"`
}

// SpecCerts is the spec's certs section (leaf settings).
type SpecCerts struct {
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty"`
	RenewBefore  string `yaml:"renewBefore,omitempty"`
}

// SpecNode is one node of the spec. The harness fills Name, IPs, the ports
// and Restart (the cluster's control command).
type SpecNode struct {
	Name                string   `yaml:"name"`
	IPs                 []string `yaml:"ips"`
	DNS                 []string `yaml:"dns,omitempty"`
	ClientPort          int      `yaml:"clientPort,omitempty"`
	PeerPort            int      `yaml:"peerPort,omitempty"`
	DataDir             string   `yaml:"dataDir,omitempty"`
	InitialClusterState string   `yaml:"initialClusterState,omitempty"`
	Deploy              string   `yaml:"deploy,omitempty"`
	Restart             string   `yaml:"restart,omitempty"`
}

// SpecClient is an entry of the spec's clients section.
type SpecClient struct {
	Name         string   `yaml:"name"`
	CommonName   string   `yaml:"commonName,omitempty"`
	Organization []string `yaml:"organization,omitempty"`
	Deploy       string   `yaml:"deploy,omitempty"`
	Restart      string   `yaml:"restart,omitempty"`
}

// NodeName is the name the harness gives the i-th member (1-based).
func NodeName(i int) string { return fmt.Sprintf("etcd-%d", i) }

// NodeIP is the loopback address of the i-th member (1-based): 127.0.0.i.
// All of 127.0.0.0/8 reaches the loopback interface on Linux, so every
// member gets an address of its own, as on real hosts, and the certificates'
// IP SANs are really checked.
func NodeIP(i int) string { return fmt.Sprintf("127.0.0.%d", i) }

// freePorts returns n distinct free TCP ports on ip. The ports are held
// until all are chosen, so two of them never coincide; another process can
// still take one before etcd binds it, which Start detects and retries.
func freePorts(ip string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		ls = append(ls, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		port, _ := strconv.Atoi(p)
		ports = append(ports, port)
	}
	return ports, nil
}
