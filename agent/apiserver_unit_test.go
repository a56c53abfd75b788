package agent

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// A restart grant lives in the status, which more identities may write
// than the spec: kube-apiserver's agent writes --etcd-servers from a
// grant's reason only when every URL in it is a spec node's client URL,
// and otherwise refuses before anything is written (the restart does not
// run either).
func TestEtcdServersGrantNamesSpecNodesOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.yaml")
	spec := "name: t\npkiDir: " + filepath.Join(dir, "pki") + "\nnodes:\n" +
		"  - {name: n1, ips: [127.0.0.1]}\n  - {name: n2, ips: [127.0.0.2]}\n  - {name: n3, ips: [127.0.0.3]}\n"
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Load(path, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv := pki.New(s)
	if _, err := issue.Init(context.Background(), inv, issue.Options{Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	eps := s.ClientEndpoints()
	for _, c := range []struct{ name, servers, want string }{
		{"a foreign URL", eps[0] + ",https://10.9.9.9:2379", `"https://10.9.9.9:2379" is not the client URL of a node in the spec`},
		{"a flag smuggled in", eps[0] + "\n--etcd-cafile=/tmp/x", "is not the client URL of a node in the spec"},
		{"none", "", `"" is not the client URL of a node in the spec`},
		{"twice", eps[0] + "," + eps[0], "names " + eps[0] + " twice"},
		{"a peer URL", s.Nodes[1].PeerURLs[0], "is not the client URL of a node in the spec"},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := t.TempDir()
			h, err := NewHost(inv, cluster.ClientAPIServer, host)
			if err != nil {
				t.Fatal(err)
			}
			r := &agentRun{o: Options{Owner: cluster.ClientAPIServer, Dir: host}, log: runner.NewReportLogger(discard{}, "agent")}
			g := &v1alpha1.RestartGrant{Host: cluster.ClientAPIServer, Reason: v1alpha1.EtcdServersReason + c.servers}
			err = r.etcdServersFor(&Agent{Host: h}, g)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if ents, _ := os.ReadDir(host); len(ents) != 0 {
				t.Errorf("refused, yet %s holds %d entries", host, len(ents))
			}
		})
	}
	// The spec's voters, in any subset the controller may name, are
	// written.
	host := t.TempDir()
	h, err := NewHost(inv, cluster.ClientAPIServer, host)
	if err != nil {
		t.Fatal(err)
	}
	r := &agentRun{o: Options{Owner: cluster.ClientAPIServer, Dir: host}, log: runner.NewReportLogger(discard{}, "agent")}
	g := &v1alpha1.RestartGrant{Host: cluster.ClientAPIServer, Reason: v1alpha1.EtcdServersReason + eps[0] + "," + eps[2]}
	if err := r.etcdServersFor(&Agent{Host: h}, g); err != nil {
		t.Fatal(err)
	}
	flags, err := os.ReadFile(filepath.Join(host, filepath.Base(pki.Paths{}.APIServerFlags())))
	if err != nil || !strings.Contains(string(flags), "--etcd-servers="+eps[0]+","+eps[2]+"\n") {
		t.Errorf("etcd-flags: %q, %v", flags, err)
	}
}
