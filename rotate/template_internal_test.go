package rotate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// A deploy command rendered from the spec reaches sh -c with each value as
// one literal argument: a PKI directory with a space is not split, and a
// dir holding $(...) is a name, not a command. The command is run by
// runCommand, exactly as a rotation runs it.
func TestTemplateValuesReachTheCommandLiterally(t *testing.T) {
	tmp := t.TempDir()
	pkiDir := filepath.Join(tmp, "my pki")
	pwned := filepath.Join(tmp, "pwned")
	argv := filepath.Join(tmp, "argv")
	dir := "/srv/etcd $(touch " + pwned + ")/it's"
	spec := `nodes:
  - name: etcd-1
    ips: [10.0.0.11]
    dir: "` + dir + `"
    dataDir: "/var/lib/etcd; touch ` + pwned + `"
    deploy: printf '%s\n' {{.Name}} {{.IP}} {{.Bundle}} {{.Dir}} {{.ConfigFile}} {{.DataDir}} > ` + argv + `
`
	s, err := cluster.Parse([]byte(spec), "", cluster.Options{PKIDir: pkiDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issue.Init(context.Background(), pki.New(s), issue.Options{}); err != nil {
		t.Fatal(err)
	}
	p, err := makePlan(pki.New(s), &runner.State{}, 87600*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Nodes) != 1 || p.Nodes[0].DeployCmd == "" {
		t.Fatalf("plan has no deploy command: %+v", p.Nodes)
	}
	if err := runner.RunCommand(context.Background(), "deploy", p.Nodes[0].DeployCmd, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(argv)
	if err != nil {
		t.Fatal(err)
	}
	paths := pki.Paths{PKI: pkiDir}
	want := strings.Join([]string{"etcd-1", "10.0.0.11", paths.NodeDir("etcd-1"), dir, paths.NodeConfig("etcd-1"),
		"/var/lib/etcd; touch " + pwned}, "\n") + "\n"
	if string(got) != want {
		t.Errorf("the command saw the arguments\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a value in the spec was run as a command")
	}
}
