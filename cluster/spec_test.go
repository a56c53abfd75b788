package cluster

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `name: test
pkiDir: pki
nodes:
  - name: etcd-node-1
    ips: [10.0.0.11]
    dns: [etcd-node-1.example.internal]
  - name: etcd-node-2
    ips: [10.0.0.12, "fd00::12"]
`

func TestParseDefaults(t *testing.T) {
	s, err := Parse([]byte(good), "/etc/etcdpki/cluster.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.PKIDir != "/etc/etcdpki/pki" {
		t.Errorf("pkiDir = %q, want it relative to the spec file", s.PKIDir)
	}
	if s.CA.CommonName != "etcd-ca" || s.CA.Key.String() != "ecdsa-256" || s.CA.Validity != DefaultCAValidity {
		t.Errorf("CA defaults = %+v", s.CA)
	}
	if s.Leaf.Validity != DefaultLeafValidity || s.Leaf.RenewBefore != DefaultRenewBefore {
		t.Errorf("leaf defaults = %+v", s.Leaf)
	}
	n := s.Nodes[1]
	if n.ClientURLs[0] != "https://10.0.0.12:2379" || n.PeerURLs[0] != "https://10.0.0.12:2380" {
		t.Errorf("urls = %v %v", n.ClientURLs, n.PeerURLs)
	}
	if n.Dir != DefaultNodeDir || n.DataDir != DefaultDataDir {
		t.Errorf("dirs = %q %q", n.Dir, n.DataDir)
	}
	want := []string{"10.0.0.12", "fd00::12", "etcd-node-2", "localhost", "127.0.0.1", "::1"}
	if got := n.ServerSANs(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("SANs = %v, want %v", got, want)
	}
	if got := s.InitialCluster(); got != "etcd-node-1=https://10.0.0.11:2380,etcd-node-2=https://10.0.0.12:2380" {
		t.Errorf("initial-cluster = %q", got)
	}
	if len(s.Clients) != 2 || s.Clients[0].Name != ClientAPIServer || s.Clients[1].Name != ClientHealthcheck {
		t.Errorf("clients = %+v", s.Clients)
	}
	o, err := Parse([]byte(good), "", Options{PKIDir: "/tmp/other"})
	if err != nil || o.PKIDir != "/tmp/other" {
		t.Errorf("--dir override: %v %q", err, o.PKIDir)
	}
}

func TestParseLocal(t *testing.T) {
	s, err := Parse([]byte("local: true\nnodes:\n- {name: a, ips: [127.0.0.1]}\n- {name: b, ips: [127.0.0.2]}\n"), "", Options{PKIDir: "/tmp/x"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Nodes[0].Dir != "/tmp/x/nodes/a" || s.Nodes[0].DataDir != "/tmp/x/data/a" {
		t.Errorf("local dirs = %q %q", s.Nodes[0].Dir, s.Nodes[0].DataDir)
	}
	if got := s.Nodes[1].ListenClientURLs(true); len(got) != 1 {
		t.Errorf("local member must listen on its own IP only, got %v", got)
	}
}

func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("want at least three example specs, found %v", files)
	}
	for _, f := range files {
		if _, err := Load(f, Options{PKIDir: t.TempDir()}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	node := "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n"
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"unknown top key", "colour: red\n" + node, `spec s.yaml:1: unknown key "colour" (in the top level)`},
		{"unknown node key", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    ipz: [1]\n", `spec s.yaml:4: unknown key "ipz" (in a node)`},
		{"duplicate node", node + "  - name: n1\n    ips: [10.0.0.2]\n", `spec s.yaml:4: nodes[1].name: duplicate node name "n1" (first at nodes[0])`},
		{"bad ip", "nodes:\n  - name: n1\n    ips: [10.0.0.300]\n", `spec s.yaml:3: nodes[0].ips[0]: "10.0.0.300" is not an IP address`},
		{"no ip", "nodes:\n  - name: n1\n", `nodes[0].ips: node "n1" has no IP address`},
		{"empty nodes", "name: x\nnodes: []\n", "nodes: no nodes"},
		{"no nodes key", "name: x\n", "nodes: no nodes"},
		{"empty file", "", "file is empty"},
		{"not yaml", "nodes: [\n", "spec s.yaml"},
		{"bad duration", "certs:\n  validity: soon\n" + node, `spec s.yaml:2: certs.validity: "soon" is not a duration`},
		{"negative duration", "certs:\n  validity: -5h\n" + node, "must be positive"},
		{"leaf longer than CA", "ca:\n  validity: 1y\ncerts:\n  validity: 2y\n" + node, "certs.validity: 730d is longer than the CA's validity (365d)"},
		{"renew-before too long", "certs:\n  validity: 30d\n  renewBefore: 30d\n" + node, "certs.renewBefore: 30d is not shorter than the leaf validity"},
		{"bad key size", "ca:\n  keyAlgorithm: rsa\n  keySize: 1024\n" + node, "ca.keySize: RSA key size 1024 is not supported"},
		{"bad algorithm", "ca:\n  keyAlgorithm: dsa\n" + node, `ca.keyAlgorithm: unknown key algorithm "dsa"`},
		{"bad port", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientPort: 70000\n", "nodes[0].clientPort: port 70000 is out of range"},
		{"bad url", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [http://10.0.0.1:2379]\n", "must be an https URL"},
		{"bad name", "nodes:\n  - name: ../evil\n    ips: [10.0.0.1]\n", "not a valid node name"},
		{"bad dns", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [bad_name!]\n", `nodes[0].dns[0]: "bad_name!" is not a DNS name`},
		{"bad template", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    restart: ssh {{.Host}} true\n", "nodes[0].restart: bad template"},
		{"relative node dir", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dir: etc/pki\n", "must be an absolute path"},
		{"listen clash", "nodes:\n  - {name: a, ips: [10.0.0.1]}\n  - {name: b, ips: [10.0.0.1]}\n", `node "b" would listen on https://10.0.0.1:2379 like node "a"`},
		{"bad state", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    initialClusterState: old\n", "must be new or existing"},
		{"fixed client subject", node + "clients:\n  - name: kube-apiserver\n    commonName: me\n", "subject is fixed by kubeadm"},
		{"duplicate client", node + "clients:\n  - name: a\n  - name: a\n", `duplicate client name "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.spec), "s.yaml", Options{PKIDir: "/tmp/pki"})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if _, ok := err.(*Error); !ok {
				t.Errorf("error is %T, want *cluster.Error (exit code 2)", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), Options{})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: file does not exist") {
		t.Errorf("err = %v", err)
	}
}

func TestFromFlags(t *testing.T) {
	s, err := FromFlags("c1", []string{"etcd-node-1=10.0.0.11", "etcd-node-2=10.0.0.12,etcd-node-2.example.internal"}, Options{PKIDir: "pki"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Nodes) != 2 || s.Nodes[1].DNSNames[0] != "etcd-node-2.example.internal" || s.Name != "c1" {
		t.Errorf("spec = %+v", s.Nodes)
	}
	if !filepath.IsAbs(s.PKIDir) {
		t.Errorf("pki dir %q not absolute", s.PKIDir)
	}
	for _, bad := range [][]string{{"noequals"}, {"n=10.0.0.300"}, {"n=host-only"}, {"a=10.0.0.1", "a=10.0.0.2"}} {
		if _, err := FromFlags("", bad, Options{}); err == nil || !strings.Contains(err.Error(), "--node") {
			t.Errorf("%v: err = %v, want one naming --node", bad, err)
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "10y": 3650 * 24 * time.Hour, "1h30m": 90 * time.Minute} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0h", "d", "x5d", "-1d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}
