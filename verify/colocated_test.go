package verify

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// A host that runs a member and kube-apiserver from one directory: the
// row says the files resolve and match, then names the file a copy broke
// or left stale. A node on another host gets no row.
func TestColocatedFilesAreChecked(t *testing.T) {
	base := t.TempDir()
	host := filepath.Join(base, "host1", "pki")
	spec := fmt.Sprintf(`nodes:
  - {name: etcd-1, ips: [127.0.0.1], dir: %s}
  - {name: etcd-2, ips: [192.0.2.2]}
clients:
  - {name: kube-apiserver, dir: %s}
`, host, host)
	s, err := cluster.Parse([]byte(spec), "", cluster.Options{PKIDir: filepath.Join(base, "pki")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	p := pki.Paths{PKI: s.PKIDir}
	os.MkdirAll(host, 0o700)
	for _, b := range []string{p.NodeDir("etcd-1"), p.APIServerDir()} {
		if out, err := exec.Command("cp", "-a", b+"/.", host+"/").CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	row := func() Check {
		t.Helper()
		cs := colocatedChecks(pki.New(s))
		if len(cs) != 1 {
			t.Fatalf("%d co-located rows, want 1 (etcd-2 is not on this machine): %v", len(cs), cs)
		}
		return cs[0]
	}
	if c := row(); c.Status != OK || c.Target != host || !strings.Contains(c.Reason, "10 files resolve") {
		t.Errorf("deployed host: %+v", c)
	}
	// A renewal not yet deployed: a warning naming the stale file.
	api, _ := pki.New(s).Target("apiserver-etcd-client")
	if _, err := issue.Renew(context.Background(), pki.New(s), []pki.Target{api}, issue.RenewOptions{Options: issue.Options{Out: io.Discard}}); err != nil {
		t.Fatal(err)
	}
	if c := row(); c.Status != Warn || !strings.Contains(c.Reason, "apiserver-etcd-client.crt is not what the PKI holds") {
		t.Errorf("stale host: %+v", c)
	}
	// The node's store gone (what the old layout's copy did): a failure
	// naming the file that no longer resolves.
	if err := os.RemoveAll(filepath.Join(host, "etcd", "..etcd-1.store")); err != nil {
		t.Fatal(err)
	}
	if c := row(); c.Status != Fail || !strings.Contains(c.Reason, "does not resolve") || !strings.Contains(c.Reason, "etcd/") {
		t.Errorf("broken host: %+v", c)
	}
}
