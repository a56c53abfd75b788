package pki

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// EtcdConfig is the subset of etcd's --config-file that etcdpki owns. The
// field names are etcd's own YAML keys.
type EtcdConfig struct {
	Name                     string `yaml:"name"`
	DataDir                  string `yaml:"data-dir"`
	ListenClientURLs         string `yaml:"listen-client-urls"`
	AdvertiseClientURLs      string `yaml:"advertise-client-urls"`
	ListenPeerURLs           string `yaml:"listen-peer-urls"`
	InitialAdvertisePeerURLs string `yaml:"initial-advertise-peer-urls"`
	InitialCluster           string `yaml:"initial-cluster"`
	InitialClusterState      string `yaml:"initial-cluster-state"`
	InitialClusterToken      string `yaml:"initial-cluster-token"`
	StrictReconfigCheck      bool   `yaml:"strict-reconfig-check"`
	// AutoCompactionMode and AutoCompactionRetention are set with auth
	// on: etcd then compacts its own history, because kube-apiserver's
	// compactor needs KV.Compact, which etcd allows only the root role
	// (see AutoCompactionRetention).
	AutoCompactionMode      string            `yaml:"auto-compaction-mode,omitempty"`
	AutoCompactionRetention string            `yaml:"auto-compaction-retention,omitempty"`
	ClientTransportSecurity TransportSecurity `yaml:"client-transport-security"`
	PeerTransportSecurity   TransportSecurity `yaml:"peer-transport-security"`
}

// AutoCompactionRetention is how much history etcd keeps when it
// compacts itself (auth on): periodic mode with kube-apiserver's own
// default --etcd-compaction-interval of 5m, so a cluster keeps the
// history a watch resumes from as it did with the apiserver compacting.
const AutoCompactionRetention = "5m"

// APIServerCompactionOff is the flag kube-apiserver runs with when etcd
// compacts itself: with auth on etcd refuses its KV.Compact (root only),
// and its user needs nothing outside its prefix without the compactor.
const APIServerCompactionOff = "--etcd-compaction-interval=0"

// TransportSecurity is etcd's client- and peer-transport-security block.
type TransportSecurity struct {
	CertFile       string `yaml:"cert-file"`
	KeyFile        string `yaml:"key-file"`
	TrustedCAFile  string `yaml:"trusted-ca-file"`
	ClientCertAuth bool   `yaml:"client-cert-auth"`
}

// The configuration files are rendered here, from the inventory, and
// written by package issue: what they should say is part of the read
// model, so verify and rotate compare against the same text.

// NodeConfig renders a node's etcd.conf.yml. state is "new" or "existing".
func NodeConfig(s *cluster.Spec, n cluster.Node, state string) EtcdConfig {
	c := nodeConfig(s, n, state)
	if s.Auth.Enabled {
		c.AutoCompactionMode, c.AutoCompactionRetention = "periodic", AutoCompactionRetention
	}
	return c
}

func nodeConfig(s *cluster.Spec, n cluster.Node, state string) EtcdConfig {
	dir := n.CertDir()
	caFile := filepath.Join(dir, CAFile)
	server, peer := ca.KindServer.BaseName, ca.KindPeer.BaseName
	return EtcdConfig{
		Name:                     n.Name,
		DataDir:                  n.DataDir,
		ListenClientURLs:         strings.Join(n.ListenClientURLs(s.Local), ","),
		AdvertiseClientURLs:      strings.Join(n.ClientURLs, ","),
		ListenPeerURLs:           strings.Join(n.ListenPeerURLs(), ","),
		InitialAdvertisePeerURLs: strings.Join(n.PeerURLs, ","),
		InitialCluster:           s.InitialCluster(),
		InitialClusterState:      state,
		InitialClusterToken:      s.Name,
		// Refuse member changes that would lose quorum.
		StrictReconfigCheck: true,
		ClientTransportSecurity: TransportSecurity{
			CertFile: filepath.Join(dir, server+CertExt), KeyFile: filepath.Join(dir, server+KeyExt),
			TrustedCAFile: caFile, ClientCertAuth: true,
		},
		PeerTransportSecurity: TransportSecurity{
			CertFile: filepath.Join(dir, peer+CertExt), KeyFile: filepath.Join(dir, peer+KeyExt),
			TrustedCAFile: caFile, ClientCertAuth: true,
		},
	}
}

// Render returns the config as YAML with a header saying where it came from.
func (c EtcdConfig) Render() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# etcd configuration for member " + c.Name + ", written by etcdpki.\n")
	b.WriteString("# Run: etcd --config-file etcd.conf.yml\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// ReadNodeConfig parses an etcd.conf.yml etcdpki wrote. Unknown keys are
// allowed: operators add their own tuning.
func ReadNodeConfig(path string) (EtcdConfig, error) {
	var c EtcdConfig
	data, err := regular.ReadFile(path, regular.MaxState)
	if err != nil {
		return c, err
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, nil
}

// APIServerFlags renders kube-apiserver's --etcd-* flags, one per line,
// with paths where the apiserver host keeps its files.
func APIServerFlags(inv *Inventory) []string {
	caFile, crt, key := APIServerFiles(inv)
	return WithCompaction(inv.Spec, APIServerFlagsFor(inv.Spec.ClientEndpoints(), caFile, crt, key))
}

// WithCompaction adds APIServerCompactionOff to flags when s turns auth
// on.
func WithCompaction(s *cluster.Spec, flags []string) []string {
	if s.Auth.Enabled {
		return append(flags, APIServerCompactionOff)
	}
	return flags
}

// APIServerFlagsFor renders kube-apiserver's --etcd-* flags for explicit
// endpoints and files.
func APIServerFlagsFor(endpoints []string, caFile, certFile, keyFile string) []string {
	return []string{
		"--etcd-servers=" + strings.Join(endpoints, ","),
		"--etcd-cafile=" + caFile,
		"--etcd-certfile=" + certFile,
		"--etcd-keyfile=" + keyFile,
	}
}

// KubeadmExternal renders the kubeadm ClusterConfiguration etcd.external
// block for the same files.
func KubeadmExternal(inv *Inventory) ([]byte, error) {
	caFile, crt, key := APIServerFiles(inv)
	return KubeadmExternalFor(inv.Spec.ClientEndpoints(), caFile, crt, key, CompactionArgs(inv.Spec)...)
}

// CompactionArgs are the apiserver's extraArgs for kubeadm when s turns
// auth on: APIServerCompactionOff as a name and a value.
func CompactionArgs(s *cluster.Spec) []KubeadmArg {
	if !s.Auth.Enabled {
		return nil
	}
	name, value, _ := strings.Cut(strings.TrimPrefix(APIServerCompactionOff, "--"), "=")
	return []KubeadmArg{{Name: name, Value: value}}
}

// KubeadmArg is one of kubeadm v1beta4's apiServer.extraArgs.
type KubeadmArg struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// APIServerFiles are the CA, certificate and key paths on the apiserver's
// host, as etcdpki init writes them.
func APIServerFiles(inv *Inventory) (caFile, certFile, keyFile string) {
	api, _ := inv.Spec.Client(cluster.ClientAPIServer)
	b, _ := inv.Bundle(cluster.ClientAPIServer)
	t, _ := inv.Target(ca.KindAPIServer.Name)
	return b.OnHost(api.Dir, b.CAPath()), b.OnHost(api.Dir, t.CertPath()), b.OnHost(api.Dir, t.KeyPath())
}

// KubeadmExternalFor renders the etcd.external block for explicit
// endpoints and files.
func KubeadmExternalFor(endpoints []string, caFile, certFile, keyFile string, apiServerArgs ...KubeadmArg) ([]byte, error) {
	type external struct {
		Endpoints []string `yaml:"endpoints"`
		CAFile    string   `yaml:"caFile"`
		CertFile  string   `yaml:"certFile"`
		KeyFile   string   `yaml:"keyFile"`
	}
	type etcd struct {
		External external `yaml:"external"`
	}
	type apiServer struct {
		ExtraArgs []KubeadmArg `yaml:"extraArgs"`
	}
	doc := struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		APIServer  *apiServer `yaml:"apiServer,omitempty"`
		Etcd       etcd       `yaml:"etcd"`
	}{
		APIVersion: "kubeadm.k8s.io/v1beta4",
		Kind:       "ClusterConfiguration",
		Etcd: etcd{External: external{
			Endpoints: endpoints,
			CAFile:    caFile,
			CertFile:  certFile,
			KeyFile:   keyFile,
		}},
	}
	if len(apiServerArgs) > 0 {
		doc.APIServer = &apiServer{ExtraArgs: apiServerArgs}
	}
	var b bytes.Buffer
	b.WriteString("# kubeadm ClusterConfiguration for an external etcd, written by etcdpki.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}
