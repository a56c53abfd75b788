package cluster

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/input"
)

const authNode = "nodes:\n  - name: n1\n    ips: [10.0.0.1]\n"

// TestAuthOffByDefault: a spec without an auth section, as every PKI
// made before it has, keeps etcd's auth off and gives no grants.
func TestAuthOffByDefault(t *testing.T) {
	s, err := Parse([]byte(authNode+"clients:\n  - name: backup\n"), "s.yaml", Options{PKIDir: "/tmp/pki"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Auth.Enabled || s.Auth.Set {
		t.Errorf("auth %+v for a spec that says nothing, want off and unset (the PKI's default decides)", s.Auth)
	}
	for _, c := range s.Clients {
		if len(c.Permissions) > 0 || c.Shared {
			t.Errorf("client %s has grants %v (shared %v) the spec does not give", c.Name, c.Permissions, c.Shared)
		}
	}
}

// TestAuthParses reads the section and each extra client's grants.
func TestAuthParses(t *testing.T) {
	spec := authNode + `auth:
  enabled: true
clients:
  - name: backup
    permissions:
      - {prefix: /backup/, access: readwrite}
      - {key: /config/leader, access: read}
  - name: mirror
    shared: true
    permissions:
      - {prefix: /registry/configmaps/, access: read}
`
	s, err := Parse([]byte(spec), "s.yaml", Options{PKIDir: "/tmp/pki"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Auth.Enabled || !s.Auth.Set {
		t.Errorf("auth.enabled: true parsed as %+v", s.Auth)
	}
	want := map[string][]Permission{
		"backup": {{Key: "/backup/", Prefix: true, Access: AccessReadWrite}, {Key: "/config/leader", Access: AccessRead}},
		"mirror": {{Key: "/registry/configmaps/", Prefix: true, Access: AccessRead}},
	}
	for name, perms := range want {
		c := s.client(name)
		if c == nil || !reflect.DeepEqual(c.Permissions, perms) {
			t.Errorf("client %s: permissions %+v, want %+v", name, c, perms)
		}
	}
	if !s.client("mirror").Shared || s.client("backup").Shared {
		t.Error("shared is not what the spec says")
	}
}

// TestAuthErrors: each bad grant is one line naming the field, a spec
// error (exit code 2).
func TestAuthErrors(t *testing.T) {
	client := authNode + "clients:\n  - name: app\n    permissions:\n"
	for _, tc := range []struct{ name, spec, want string }{
		{"unknown access", client + "      - {prefix: /app/, access: rw}\n", `spec s.yaml:5: clients[0].permissions[0].access: unknown access "rw" (read, write or readwrite)`},
		{"no access", client + "      - {prefix: /app/}\n", `clients[0].permissions[0].access: unknown access ""`},
		{"prefix and key", client + "      - {prefix: /app/, key: /x, access: read}\n", `clients[0].permissions[0].key: a permission names a prefix or a key, not both`},
		{"neither", client + "      - {access: read}\n", `clients[0].permissions[0].prefix: a permission needs a prefix or a key`},
		{"unknown field", client + "      - {path: /app/, access: read}\n", `unknown key "path" (in a client's permission)`},
		{"under the apiserver's prefix", client + "      - {prefix: /registry/secrets/, access: read}\n", `clients[0].permissions[0].prefix: prefix "/registry/secrets/" read overlaps kube-apiserver's prefix "/registry/": set shared: true on client "app"`},
		{"over the apiserver's prefix", client + "      - {key: /app/x, access: read}\n      - {prefix: /, access: read}\n", `clients[0].permissions[1].prefix: prefix "/" read overlaps kube-apiserver's prefix`},
		{"a key under the apiserver's prefix", client + "      - {key: /registry/x, access: write}\n", `clients[0].permissions[0].key: key "/registry/x" write overlaps`},
		{"root by common name", authNode + "clients:\n  - name: breakglass\n    commonName: root\n", `clients[0].commonName: client "breakglass" would be etcd's superuser "root"`},
		{"root by name", authNode + "clients:\n  - name: root\n", `clients[0].commonName: client "root" would be etcd's superuser "root"`},
		{"apiserver grants", authNode + "clients:\n  - name: kube-apiserver\n    permissions:\n      - {prefix: /x/, access: read}\n", `clients[0].permissions: the kube-apiserver client's grants are fixed by etcdpki`},
		{"healthcheck shared", authNode + "clients:\n  - name: healthcheck\n    shared: true\n", `clients[0].permissions: the healthcheck client's grants are fixed`},
		{"control character", client + "      - {prefix: \"/a\\tb\", access: read}\n", `holds a control character`},
		{"a node's common name", "auth:\n  enabled: true\n" + authNode + "clients:\n  - name: app\n    commonName: n1\n", `clients[0].commonName: client "app" has node "n1"'s common name`},
		{"a node's common name with grants", client + "      - {prefix: /app/, access: read}\n" + "    commonName: n1\n", `clients[0].commonName: client "app" has node "n1"'s common name`},
		{"bad enabled", "auth:\n  enabled: maybe\n" + authNode, `spec s.yaml:2`},
		{"kube-apiserver's common name", "auth:\n  enabled: true\n" + authNode + "clients:\n  - name: app\n    commonName: kube-apiserver-etcd-client\n", `spec s.yaml:8: clients[0].commonName: client "app" has kube-apiserver's common name "kube-apiserver-etcd-client": with auth its certificate would hold kube-apiserver's grants on "/registry/"; set shared: true on client "app" if that is meant`},
		{"kube-apiserver's common name with grants", client + "      - {prefix: /app/, access: read}\n" + "    commonName: kube-apiserver-etcd-client\n", `clients[0].commonName: client "app" has kube-apiserver's common name`},
		{"the healthcheck's common name", client + "      - {prefix: /app/, access: read}\n" + "    commonName: kube-etcd-healthcheck-client\n", `clients[0].commonName: client "app" has the healthcheck client's common name "kube-etcd-healthcheck-client": with auth its grants would go to every node's healthcheck certificate too`},
		{"a node with kube-apiserver's common name", "auth:\n  enabled: true\nnodes:\n  - name: kube-apiserver-etcd-client\n    ips: [10.0.0.1]\n", `spec s.yaml:4: nodes[0].name: node "kube-apiserver-etcd-client" would be kube-apiserver's etcd user with auth on (its server and peer certificates' common name), readwrite on "/registry/": rename it`},
		{"a node named root", "auth:\n  enabled: true\nnodes:\n  - name: n1\n    ips: [10.0.0.1]\n  - name: root\n    ips: [10.0.0.2]\n", `spec s.yaml:6: nodes[1].name: node "root" would be etcd's superuser "root" with auth on (its server and peer certificates' common name): rename it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.spec), "s.yaml", Options{PKIDir: "/tmp/pki"})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tc.want)
			}
			var ec interface{ ExitCode() int }
			if !errors.As(err, &ec) || ec.ExitCode() != input.ExitCode {
				t.Errorf("error %T is not bad input (exit code %d)", err, input.ExitCode)
			}
		})
	}
}

// TestPermissionOverlaps: a grant reaches kube-apiserver's prefix when
// it lies under it or covers it.
func TestPermissionOverlaps(t *testing.T) {
	for _, tc := range []struct {
		p    Permission
		want bool
	}{
		{Permission{Key: "/registry/", Prefix: true}, true},
		{Permission{Key: "/registry/a", Prefix: true}, true},
		{Permission{Key: "/reg", Prefix: true}, true},
		{Permission{Key: "", Prefix: true}, true},
		{Permission{Key: "/registry0", Prefix: true}, false},
		{Permission{Key: "/registry"}, false},
		{Permission{Key: "/registry/x"}, true},
		{Permission{Key: "compact_rev_key"}, false},
		{Permission{Key: "/app/", Prefix: true}, false},
	} {
		if got := tc.p.Overlaps(APIServerPrefix); got != tc.want {
			t.Errorf("%s overlaps %q: %v, want %v", tc.p, APIServerPrefix, got, tc.want)
		}
	}
}

// TestAuthExplicitOff: enabled: false is the spec's own choice (the
// opt-out of init's default), not the unset default.
func TestAuthExplicitOff(t *testing.T) {
	s, err := Parse([]byte(authNode+"auth:\n  enabled: false\n"), "s.yaml", Options{PKIDir: "/tmp/pki"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Auth != (Auth{Enabled: false, Set: true}) {
		t.Errorf("auth.enabled: false parsed as %+v, want off and set", s.Auth)
	}
}

// TestNodeNamedRoot: a node's server and peer certificates carry its
// name as their common name, etcd's user with auth on: a node named root
// is refused when auth is on (above), and is kept when it is off, as
// before auth existed. CheckAuthNames refuses it for a spec whose auth
// the PKI's default turned on.
func TestNodeNamedRoot(t *testing.T) {
	spec := []byte("nodes:\n  - name: root\n    ips: [10.0.0.1]\n")
	s, err := Parse(spec, "s.yaml", Options{PKIDir: "/tmp/pki"})
	if err != nil {
		t.Fatalf("auth unset: %v", err)
	}
	if err := CheckAuthNames(s); err != nil {
		t.Errorf("auth off: %v", err)
	}
	s.Auth.Enabled = true
	err = CheckAuthNames(s)
	var ec interface{ ExitCode() int }
	if err == nil || !strings.Contains(err.Error(), `nodes[0].name: node "root" would be etcd's superuser`) || !errors.As(err, &ec) || ec.ExitCode() != input.ExitCode {
		t.Errorf("auth on by default: %v", err)
	}
}

// TestAPIServerCommonNameShared: a client with kube-apiserver's common
// name is kube-apiserver's etcd user; it is allowed when it says shared
// (a second control-plane host's bundle), or with auth off and no
// grants, and refused when the PKI's default turns auth on.
func TestAPIServerCommonNameShared(t *testing.T) {
	for _, spec := range []string{
		"auth:\n  enabled: true\n" + authNode + "clients:\n  - name: apiserver-2\n    shared: true\n    commonName: kube-apiserver-etcd-client\n",
		authNode + "clients:\n  - name: apiserver-2\n    commonName: kube-apiserver-etcd-client\n",
	} {
		s, err := Parse([]byte(spec), "s.yaml", Options{PKIDir: "/tmp/pki"})
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		s.Auth.Enabled = true
		err = CheckAuthNames(s)
		if refused := err != nil; refused != !s.client("apiserver-2").Shared {
			t.Errorf("%q with auth on by default: %v", spec, err)
		}
	}
}
