package pki

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
)

// EnvFile is the name of a member's configuration as environment
// variables, beside its etcd.conf.yml.
//
// etcd (through 3.6 at least) has no key for a CRL in its --config-file
// (client-crl-file and peer-crl-file are flags only, and a config file
// makes etcd ignore every flag and ETCD_* variable), so a member started
// with --config-file never checks a CRL. etcd.env holds the same settings
// as etcd.conf.yml plus ETCD_CLIENT_CRL_FILE and ETCD_PEER_CRL_FILE: a
// member started from it (systemd's EnvironmentFile=, or `env $(cat
// etcd.env) etcd`, with no --config-file) enforces the CRL.
const EnvFile = "etcd.env"

// NodeEnv renders node n's etcd.env: the settings of NodeConfig as ETCD_*
// variables, and the CRL its member reads on every accepted connection.
func NodeEnv(s *cluster.Spec, n cluster.Node, state string) []byte {
	return NodeEnvOf(NodeConfig(s, n, state), n)
}

// NodeEnvOf renders the etcd.env of config c for node n: NodeEnv for a
// config that is not the spec's own (a member joining a running cluster).
func NodeEnvOf(c EtcdConfig, n cluster.Node) []byte {
	crl := filepath.Join(n.CertDir(), CRLFile)
	vars := [][2]string{
		{"NAME", c.Name},
		{"DATA_DIR", c.DataDir},
		{"LISTEN_CLIENT_URLS", c.ListenClientURLs},
		{"ADVERTISE_CLIENT_URLS", c.AdvertiseClientURLs},
		{"LISTEN_PEER_URLS", c.ListenPeerURLs},
		{"INITIAL_ADVERTISE_PEER_URLS", c.InitialAdvertisePeerURLs},
		{"INITIAL_CLUSTER", c.InitialCluster},
		{"INITIAL_CLUSTER_STATE", c.InitialClusterState},
		{"INITIAL_CLUSTER_TOKEN", c.InitialClusterToken},
		{"STRICT_RECONFIG_CHECK", fmt.Sprint(c.StrictReconfigCheck)},
		{"CERT_FILE", c.ClientTransportSecurity.CertFile},
		{"KEY_FILE", c.ClientTransportSecurity.KeyFile},
		{"TRUSTED_CA_FILE", c.ClientTransportSecurity.TrustedCAFile},
		{"CLIENT_CERT_AUTH", fmt.Sprint(c.ClientTransportSecurity.ClientCertAuth)},
		{"CLIENT_CRL_FILE", crl},
		{"PEER_CERT_FILE", c.PeerTransportSecurity.CertFile},
		{"PEER_KEY_FILE", c.PeerTransportSecurity.KeyFile},
		{"PEER_TRUSTED_CA_FILE", c.PeerTransportSecurity.TrustedCAFile},
		{"PEER_CLIENT_CERT_AUTH", fmt.Sprint(c.PeerTransportSecurity.ClientCertAuth)},
		{"PEER_CRL_FILE", crl},
	}
	if c.AutoCompactionMode != "" {
		vars = append(vars, [2]string{"AUTO_COMPACTION_MODE", c.AutoCompactionMode}, [2]string{"AUTO_COMPACTION_RETENTION", c.AutoCompactionRetention})
	}
	var b bytes.Buffer
	b.WriteString("# etcd configuration for member " + c.Name + " as environment variables, written by etcdpki.\n")
	b.WriteString("# Unlike etcd.conf.yml it names the CRL (etcd reads CRL files from flags and ETCD_* only).\n")
	b.WriteString("# Run etcd with these variables and without --config-file (systemd: EnvironmentFile=).\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "ETCD_%s=%s\n", v[0], envQuote(v[1]))
	}
	return b.Bytes()
}

// envQuote quotes a value for systemd's EnvironmentFile and a POSIX
// shell alike when it holds anything but plain characters.
func envQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
