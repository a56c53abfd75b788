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
