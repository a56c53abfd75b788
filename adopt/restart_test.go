package adopt_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdpki/etcdpki/adopt"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/kubeadmcerts"
	"github.com/etcdpki/etcdpki/pki"
)

// TestAdoptedMemberRestartsFromItsEnv adopts a kubeadm cluster, deploys
// one node's bundle as the spec's deploy command does, and restarts that
// member from the etcd.env adopt wrote (the config that enforces the
// CRL): the member must serve the apiserver over TLS. An etcd.env naming
// a CRL its bundle does not hold makes etcd refuse every connection
// ("open .../crl.der: no such file or directory").
func TestAdoptedMemberRestartsFromItsEnv(t *testing.T) {
	c := kubeadmcerts.Start(t, kubeadmcerts.Options{})
	var out bytes.Buffer
	_, err := adopt.Run(context.Background(), pki.New(c.Spec), adopt.Options{
		CACert: filepath.Join(c.NodePKI(1), "etcd", "ca.crt"), CAKey: filepath.Join(c.NodePKI(1), "etcd", "ca.key"),
		NodeDirs:   map[string]string{"etcd-1": c.NodePKI(1)},
		ClientDirs: map[string]string{cluster.ClientAPIServer: c.APIServerPKI},
		Out:        &out,
	})
	if err != nil {
		t.Fatalf("adopt: %v\n%s", err, out.String())
	}
	paths := pki.New(c.Spec).Paths
	n := c.Spec.Nodes[0]
	if cp, err := exec.Command("cp", "-a", paths.NodeDir(n.Name)+"/.", n.Dir+"/").CombinedOutput(); err != nil {
		t.Fatalf("deploy: %v: %s", err, cp)
	}
	data, err := os.ReadFile(paths.NodeEnv(n.Name))
	if err != nil {
		t.Fatal(err)
	}
	vars, err := pki.ParseEnv(data)
	if err != nil {
		t.Fatal(err)
	}
	if vars[pki.EnvClientCRL] == "" {
		t.Fatalf("%s names no CRL: the test would prove nothing", paths.NodeEnv(n.Name))
	}
	m := c.Member(n.Name)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(etcdtest.EtcdBin(t))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, TLS: c.APIServerTLS(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tail := log.String()
			if len(tail) > 3000 {
				tail = tail[len(tail)-3000:]
			}
			t.Fatalf("%s restarted from %s does not serve: %v\netcd log tail:\n%s", n.Name, paths.NodeEnv(n.Name), err, tail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
