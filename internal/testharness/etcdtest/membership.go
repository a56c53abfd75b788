package etcdtest

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/cluster"
)

// RemoveNode deletes node name from the spec file, as an operator does
// before `etcdpki member remove`, and drops its Member from the cluster
// (its process is left alone: etcd stops a removed member by itself, and
// the returned Member still kills it when the test ends). It returns the
// node as it was, for ReAddNode, and the Member.
func (c *Cluster) RemoveNode(t testing.TB, name string) (SpecNode, *Member) {
	t.Helper()
	i := slices.IndexFunc(c.File.Nodes, func(n SpecNode) bool { return n.Name == name })
	if i < 0 {
		t.Fatalf("etcdtest: remove node: no node %s", name)
	}
	n := c.File.Nodes[i]
	c.File.Nodes = slices.Delete(slices.Clone(c.File.Nodes), i, i+1)
	spec, err := c.writeSpec()
	if err != nil {
		t.Fatalf("etcdtest: remove node %s: %v", name, err)
	}
	m := c.Member(name)
	c.mu.Lock()
	c.Spec = spec
	c.Members = slices.DeleteFunc(c.Members, func(x *Member) bool { return x == m })
	c.mu.Unlock()
	t.Cleanup(func() { _ = m.Kill() })
	return n, m
}

// ReAddNode puts a node back into the spec file (a replacement host with
// the same name, IP and ports) and runs issue.Init, as AddNode does.
func (c *Cluster) ReAddNode(t testing.TB, n SpecNode) *Member {
	t.Helper()
	c.File.Nodes = append(c.File.Nodes, n)
	if err := c.writeAndInit(); err != nil {
		t.Fatalf("etcdtest: re-add node %s: %v", n.Name, err)
	}
	return c.Member(n.Name)
}

// writeSpec writes c.File and parses it, without running init.
func (c *Cluster) writeSpec() (*cluster.Spec, error) {
	data, err := yaml.Marshal(&c.File)
	if err != nil {
		return nil, fmt.Errorf("marshal spec: %w", err)
	}
	if err := os.WriteFile(c.SpecPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("write spec: %w", err)
	}
	return cluster.Parse(data, c.SpecPath, cluster.Options{PKIDir: c.Paths.PKI})
}

// JoinNode adds a member to the spec file on the next loopback IP with
// free ports, as AddNode does, but runs no init: nothing is issued for
// it, as for a node an agent joins (its keys are made on its host). Its
// Member starts from PKI/nodes/NAME/etcd.conf.yml, which the joining
// agent writes (pointed at --dir PKI/nodes/NAME); the control command
// starts it as for any member. It returns the Member and the node as
// written to the spec.
func (c *Cluster) JoinNode(t testing.TB, edit func(*SpecNode)) (*Member, SpecNode) {
	t.Helper()
	n, err := c.newNode(len(c.File.Nodes) + 1)
	if err != nil {
		t.Fatalf("etcdtest: join node: %v", err)
	}
	if edit != nil {
		edit(&n)
	}
	c.File.Nodes = append(c.File.Nodes, n)
	spec, err := c.writeSpec()
	if err != nil {
		t.Fatalf("etcdtest: join node %s: %v", n.Name, err)
	}
	sn, _ := spec.Node(n.Name)
	m := &Member{Name: n.Name, ConfigFile: c.Paths.NodeConfig(n.Name), ClientURL: sn.ClientURLs[0], PeerURL: sn.PeerURLs[0], DataDir: sn.DataDir, c: c}
	c.mu.Lock()
	c.Spec = spec
	c.Members = append(c.Members, m)
	c.mu.Unlock()
	return m, n
}
