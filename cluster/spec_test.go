package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
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
		{"default leaf longer than CA", "name: x\nca:\n  validity: 100d\n" + node, "spec s.yaml:3: certs.validity: 365d (the default) is longer than the CA's validity (100d)"},
		{"renew-before too long", "certs:\n  validity: 30d\n  renewBefore: 30d\n" + node, "certs.renewBefore: 30d is not shorter than the leaf validity"},
		{"bad key size", "ca:\n  keyAlgorithm: rsa\n  keySize: 1024\n" + node, "ca.keySize: RSA key size 1024 is not supported"},
		{"bad algorithm", "ca:\n  keyAlgorithm: dsa\n" + node, `ca.keyAlgorithm: unknown key algorithm "dsa"`},
		{"bad port", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientPort: 70000\n", "nodes[0].clientPort: port 70000 is out of range"},
		{"bad url", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [http://10.0.0.1:2379]\n", "not an https URL"},
		{"bad name", "nodes:\n  - name: ../evil\n    ips: [10.0.0.1]\n", `node name "../evil" is not a valid name`},
		{"bad dns", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [bad_name!]\n", `nodes[0].dns[0]: "bad_name!" is not a DNS name`},
		{"bad template", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    restart: ssh {{.Host}} true\n", "nodes[0].restart: bad template"},
		{"relative node dir", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dir: etc/pki\n", "must be an absolute path"},
		{"listen clash", "nodes:\n  - {name: a, ips: [10.0.0.1]}\n  - {name: b, ips: [10.0.0.1]}\n", `node "b" would listen on 10.0.0.1:2379 like node "a"`},
		{"bad state", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    initialClusterState: old\n", "must be new or existing"},
		{"fixed client subject", node + "clients:\n  - name: kube-apiserver\n    commonName: me\n", "subject is fixed by kubeadm"},
		{"duplicate client", node + "clients:\n  - name: a\n  - name: a\n", `duplicate client name "a"`},

		// Durations are exact: no stray units, signs or fractions, no overflow.
		{"days then years", "certs:\n  validity: 10dy\n" + node, `certs.validity: "10dy" is not a duration`},
		{"years then days", "certs:\n  validity: 10yd\n" + node, `certs.validity: "10yd" is not a duration`},
		{"plus sign", "ca:\n  validity: +10y\n" + node, `ca.validity: "+10y" is not a duration`},
		{"plus sign go form", "certs:\n  renewBefore: +10h\n" + node, `certs.renewBefore: "+10h" is not a duration`},
		{"bare number", "certs:\n  validity: 2380.5\n" + node, `certs.validity: "2380.5" is not a duration`},
		{"fraction of a day", "certs:\n  validity: 1.5d\n" + node, `certs.validity: "1.5d" is not a duration`},
		{"space", "certs:\n  validity: 10 d\n" + node, `certs.validity: "10 d" is not a duration`},
		{"CA overflows", "ca:\n  validity: 300y\n" + node, `spec s.yaml:2: ca.validity: "300y" is too long (at most 292y)`},
		{"days overflow", "ca:\n  validity: 9999999999999999999d\n" + node, `ca.validity: "9999999999999999999d" is too long`},
		{"hours overflow", "ca:\n  validity: 9999999h\n" + node, `ca.validity: "9999999h" is too long`},
		{"zero", "certs:\n  validity: 0d\n" + node, `certs.validity: "0d" must be positive`},
		{"under a second", "certs:\n  validity: 500ms\n" + node, `certs.validity: 500ms is shorter than a second`},

		// Integer fields take whole numbers only (yaml.v3 used to truncate).
		{"fractional port", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    peerPort: 2380.5\n", `spec s.yaml:4: nodes[0].peerPort: "2380.5" is not a whole number`},
		{"fractional key size", "ca:\n  keySize: 256.0\n" + node, `ca.keySize: "256.0" is not a whole number`},
		{"port zero", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientPort: -1\n", "nodes[0].clientPort: port -1 is out of range"},

		// Names: one validator, reserved names, subjects.
		{"underscore first", "nodes:\n  - name: _x\n    ips: [10.0.0.1]\n", `nodes[0].name: node name "_x" is not a valid name`},
		{"node named like a kind", "nodes:\n  - name: etcd-server\n    ips: [10.0.0.1]\n", `nodes[0].name: node name "etcd-server" is reserved`},
		{"node named ca", "nodes:\n  - name: ca\n    ips: [10.0.0.1]\n", `nodes[0].name: node name "ca" is reserved`},
		{"node named like a client", "nodes:\n  - name: kube-apiserver\n    ips: [10.0.0.1]\n", `node name "kube-apiserver" is the name of a built-in client`},
		{"client named like a kind", node + "clients:\n  - name: etcd-server\n", `clients[0].name: client name "etcd-server" is reserved`},
		{"client named ca", node + "clients:\n  - name: ca\n", `clients[0].name: client name "ca" is reserved`},
		{"client named like a node", node + "clients:\n  - name: n1\n", `clients[0].name: client name "n1" is also a node's name`},
		{"client bad name", node + "clients:\n  - name: _x\n", `clients[0].name: client name "_x" is not a valid name`},
		{"commonName newline", node + "clients:\n  - name: a\n    commonName: \"a\\nb\"\n", `clients[0].commonName: "a\nb" holds a control character (U+000A)`},
		{"commonName too long", node + "clients:\n  - name: a\n    commonName: " + strings.Repeat("x", 65) + "\n", "clients[0].commonName: \"" + strings.Repeat("x", 65) + "\" is longer than 64 bytes"},
		{"organization control", node + "clients:\n  - name: a\n    organization: [\"o\\tp\"]\n", `clients[0].organization[0]: "o\tp" holds a control character (U+0009)`},
		{"CA commonName empty-ish", "ca:\n  commonName: \" x\"\n" + node, `ca.commonName: " x" starts or ends with a space`},

		// DNS names.
		{"dns space", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [\"a b\"]\n", `nodes[0].dns[0]: "a b" is not a DNS name`},
		{"dns empty", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [\"\"]\n", `nodes[0].dns[0]: "" is not a DNS name`},
		{"dns email", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [ops@example.com]\n", `nodes[0].dns[0]: "ops@example.com" is not a DNS name`},
		{"dns url", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [\"https://a.example\"]\n", `nodes[0].dns[0]: "https://a.example" is not a DNS name`},
		{"dns non-ascii", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [bücher.example]\n", `nodes[0].dns[0]: "bücher.example" is not a DNS name`},
		{"dns newline", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [\"a\\nb\"]\n", `nodes[0].dns[0]: "a\nb" holds a control character (U+000A)`},
		// One rule for control characters, in every field and key.
		{"node dir newline", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dir: \"/srv/a\\n--x\"\n", `spec s.yaml:4: nodes[0].dir: "/srv/a\n--x" holds a control character (U+000A)`},
		{"client dir newline", node + "clients:\n  - name: kube-apiserver\n    dir: \"/srv/a\\r\"\n", `clients[0].dir: "/srv/a\r" holds a control character (U+000D)`},
		{"data dir DEL", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dataDir: \"/var/a\\x7f\"\n", `nodes[0].dataDir: "/var/a\x7f" holds a control character (U+007F)`},
		{"pkiDir line separator", "pkiDir: \"a\\Lb\"\n" + node, `pkiDir: "a\u2028b" holds a control character (U+2028)`},
		{"url escape", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [\"https://10.0.0.1:2379\\e\"]\n", `nodes[0].clientURLs[0]: "https://10.0.0.1:2379\x1b" holds a control character (U+001B)`},
		{"template control", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    restart: \"true\\x01\"\n", `nodes[0].restart: "true\x01" holds a control character (U+0001)`},
		{"key control", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    \"di\\tr\": x\n", `nodes[0]: key "di\tr" holds a control character (U+0009)`},
		{"second document", node + "---\n" + node, `a second YAML document (after ---): the spec is one document`},
		{"dns is an IP", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [\"10.0.0.2\"]\n", `nodes[0].dns[0]: "10.0.0.2" is not a DNS name: its last label is a number`},
		{"dns wildcard public suffix", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    dns: [\"*.co.uk\"]\n", `nodes[0].dns[0]: "*.co.uk" is a wildcard over the public suffix "co.uk"`},

		// URLs and addresses.
		{"url port zero", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [\"https://10.0.0.1:0\"]\n", `nodes[0].clientURLs[0]: "https://10.0.0.1:0": port out of range 1-65535`},
		{"url port too big", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    peerURLs: [\"https://10.0.0.1:65536\"]\n", `nodes[0].peerURLs[0]: "https://10.0.0.1:65536": port out of range`},
		{"url userinfo", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    peerURLs: [\"https://u:p@10.0.0.1:2380\"]\n", `nodes[0].peerURLs[0]: "https://u:p@10.0.0.1:2380": has user info`},
		{"url query", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [\"https://10.0.0.1:2379?x=1\"]\n", `has a query`},
		{"url fragment", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [\"https://10.0.0.1:2379#x\"]\n", `has a fragment`},
		{"url empty host", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [\"https://:2379\"]\n", `nodes[0].clientURLs[0]: "https://:2379": has no host`},
		{"url host not a SAN", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    clientURLs: [\"https://10.0.0.9:2379\"]\n", `nodes[0].clientURLs[0]: "https://10.0.0.9:2379": host 10.0.0.9 is not among the node's certificate SANs`},
		{"url dns host not a SAN", "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n    peerURLs: [\"https://n2.example:2380\"]\n", `host n2.example is not among the node's certificate SANs`},
		{"same peer URL", "nodes:\n  - {name: a, ips: [10.0.0.1], dns: [etcd.example], peerURLs: [\"https://etcd.example:2380\"]}\n  - {name: b, ips: [10.0.0.2], dns: [etcd.example], peerURLs: [\"https://etcd.example:2380/\"]}\n", `spec s.yaml:3: nodes[1].peerURLs[0]: https://etcd.example:2380/ is already advertised by node "a"`},
		{"client URL on the default peer URL", "nodes:\n  - name: a\n    ips: [10.0.0.1]\n    clientURLs: [\"https://10.0.0.1:2380\"]\n", `spec s.yaml:4: nodes[0].clientURLs[0]: https://10.0.0.1:2380 is also this node's default peer URL (its first IP and peerPort); choose another port`},
		{"same IP loopback", "nodes:\n  - {name: a, ips: [127.0.0.1]}\n  - {name: b, ips: [127.0.0.1]}\n", `node "b" would listen on 127.0.0.1:2379 like node "a"`},
		{"port clash across kinds", "nodes:\n  - {name: a, ips: [10.0.0.1]}\n  - {name: b, ips: [10.0.0.1], clientPort: 2380, peerPort: 2381}\n", `node "b" would listen on 10.0.0.1:2380 like node "a"`},
		{"unspecified IP", "nodes:\n  - {name: a, ips: [0.0.0.0]}\n", `nodes[0].ips[0]: 0.0.0.0 cannot be a member's address`},
		{"IP twice", "nodes:\n  - {name: a, ips: [10.0.0.1, 10.0.0.1]}\n", `nodes[0].ips[1]: 10.0.0.1 is listed twice`},
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
	for _, bad := range []string{"", "0h", "d", "x5d", "-1d", "10dy", "10yd", "+10y", "+10h", "2380.5", "1.5d", "300y", "106752d", "2562048h", " 1h", "1H"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

func TestDurationsAtTheLimit(t *testing.T) {
	// 292 years fit in a time.Duration; 293 used to wrap round to weeks.
	d, err := ParseDuration("292y")
	if err != nil || d != 292*365*24*time.Hour {
		t.Errorf("292y = %v, %v", d, err)
	}
	if d, err := ParseDuration("293y"); err == nil {
		t.Errorf("293y accepted as %v", d)
	}
}

// A spec path that names a FIFO or a device must fail at once (a FIFO
// would block the read forever, /dev/zero never end), and a huge file is
// refused instead of read into memory.
func TestLoadRefusesNonRegularAndHugeFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "spec.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(huge, []byte("# "+strings.Repeat("x", MaxSpecSize)+"\n"+good), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        "spec.fifo: is a FIFO, not a regular file",
		"/dev/zero": "/dev/zero: is a device, not a regular file",
		dir:         "is a directory, not a regular file",
		huge:        "huge.yaml: is larger than 1 MiB",
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(path, Options{})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want %q", path, err, want)
			}
			if _, ok := err.(*Error); !ok {
				t.Errorf("%s: error is %T, want *cluster.Error (exit code 2)", path, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Load still blocked after 10s", path)
		}
	}
}

// Template values are shell-quoted: sh -c sees one literal word per value.
func TestRenderTemplateQuotesValues(t *testing.T) {
	d := TemplateData{Name: "etcd-1", IP: "10.0.0.11", Bundle: "/srv/pki/nodes/etcd-1",
		Dir: "/srv/my pki/$(touch pwned)", ConfigFile: "/a/it's.yml", DataDir: "/var/lib/etcd"}
	got, err := RenderTemplate("rsync -a {{.Bundle}}/ root@{{.IP}}:{{.Dir}}/ {{.ConfigFile}} {{.DataDir}} {{.Name}}", d)
	if err != nil {
		t.Fatal(err)
	}
	want := `rsync -a /srv/pki/nodes/etcd-1/ root@10.0.0.11:'/srv/my pki/$(touch pwned)'/ '/a/it'\''s.yml' /var/lib/etcd etcd-1`
	if got != want {
		t.Errorf("rendered\n%s\nwant\n%s", got, want)
	}
	if got := ShellQuote(""); got != "''" {
		t.Errorf("empty value renders as %s, want ''", got)
	}
}

// TestAdvertisedURLsInTheFormEtcdAccepts parses URLs etcd would refuse
// or read differently if written verbatim ("URL must not contain a path"
// for a trailing slash): each comes back in the one form written into
// etcd.conf.yml and the apiserver's flags, and that form passes etcd's
// own parser.
func TestAdvertisedURLsInTheFormEtcdAccepts(t *testing.T) {
	spec := `nodes:
  - name: a
    ips: [10.0.0.11, "fd00::11"]
    dns: [A.Example.Internal]
    clientURLs: ["HTTPS://10.0.0.11:02379/", "https://A.EXAMPLE.internal:2379", "https://[FD00:0::11]:2379/"]
    peerURLs: ["https://10.0.0.11:2380/"]
`
	s, err := Parse([]byte(spec), "s.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := s.Nodes[0]
	want := []string{"https://10.0.0.11:2379", "https://a.example.internal:2379", "https://[fd00::11]:2379"}
	if strings.Join(n.ClientURLs, " ") != strings.Join(want, " ") {
		t.Errorf("clientURLs = %q, want %q", n.ClientURLs, want)
	}
	if strings.Join(n.PeerURLs, " ") != "https://10.0.0.11:2380" {
		t.Errorf("peerURLs = %q, want [https://10.0.0.11:2380]", n.PeerURLs)
	}
	for _, u := range append(n.ClientURLs, n.PeerURLs...) {
		if _, err := types.NewURLs([]string{u}); err != nil {
			t.Errorf("etcd refuses %s: %v", u, err)
		}
	}
}
