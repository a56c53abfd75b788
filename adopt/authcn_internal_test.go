package adopt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// With auth on, etcd's user is a certificate's common name: an operator's
// pair imported for a target whose CN is not the spec's would hold
// another user's grants (root's, kube-apiserver's) or lose its own (a
// kubespray apiserver pair named for its host: the apiserver locked out
// once adopt applies auth). Such a pair is bad input, refused before
// anything is written; a node's pair under another CN is taken (nodes
// get no user), unless that CN is a user with grants.
func TestAdoptWithAuthOnRefusesAPairUnderAnotherUser(t *testing.T) {
	spec := "name: t\nauth:\n  enabled: true\nnodes:\n  - {name: n1, ips: [127.0.0.1]}\nclients:\n  - name: ops\n    permissions:\n      - {prefix: /ops/, access: readwrite}\n"
	s, err := cluster.Parse([]byte(spec), "s.yaml", cluster.Options{PKIDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	inv := pki.New(s)
	authority, err := ca.Create(s.CA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir, name string, tgt pki.Target, cn string) {
		r := tgt.Request(s.Leaf)
		r.CommonName = cn
		crt, key, err := authority.Sign(r)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, name+".crt"), crt, 0o600)
		os.WriteFile(filepath.Join(dir, name+".key"), key, 0o600)
	}
	ops, _ := inv.Target("client/ops")
	api, _ := inv.Target("apiserver-etcd-client")
	server, _ := inv.Target("n1/etcd-server")
	for _, c := range []struct {
		name          string
		nodes, client map[string]string
		want          string
	}{
		{"a client pair as root", nil, map[string]string{"ops": "ops-root"}, `has common name "root", but with auth on client/ops is etcd's user "ops"`},
		{"the apiserver's pair under its host's name", nil, map[string]string{"kube-apiserver": "api-host"}, `has common name "node-cp-1", but with auth on apiserver-etcd-client is etcd's user "kube-apiserver-etcd-client"`},
		{"a node's pair as kube-apiserver", map[string]string{"n1": "n1-api"}, nil, `has common name "kube-apiserver-etcd-client", but with auth on n1/etcd-server is etcd's user "n1"`},
		{"a node's pair under its host's name", map[string]string{"n1": "n1-host"}, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			for owner, d := range c.client {
				d = filepath.Join(base, d)
				c.client[owner] = d
				switch owner {
				case "ops":
					write(d, "ops", ops, cluster.RootUser)
				default:
					write(d, "apiserver-etcd-client", api, "node-cp-1")
				}
			}
			for owner, d := range c.nodes {
				d = filepath.Join(base, d)
				c.nodes[owner] = d
				cn := cluster.APIServerCommonName
				if strings.HasSuffix(d, "host") {
					cn = "master-1"
				}
				write(d, "server", server, cn)
			}
			_, err := readSources(inv, c.nodes, c.client, authority)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
