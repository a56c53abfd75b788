package main

import (
	"bytes"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// flagsMadeSpec edits the spec of a PKI made from flags (PKI/etcdpki.yaml,
// read because --dir was given and --spec was not): member add --node
// NAME=IP[,IP|DNS...] adds NAME to it, member remove NAME drops NAME from
// it. It returns the edited spec and its YAML, which the command's first
// write puts in place (with the PKI's other files, under the lock), or
// nil YAML when nothing changes.
func flagsMadeSpec(c *cli.Context, s *cluster.Spec, what, name string) (*cluster.Spec, []byte, error) {
	node := ""
	if c.Command.Name == "add" {
		node = c.String("node")
	}
	path, err := pkiSpecIfPresent(c.String("dir"))
	if err != nil {
		return nil, nil, err
	}
	if c.String("spec") != "" || path == "" {
		if node != "" {
			return nil, nil, input.Errorf("%s: --node is for a PKI made from flags (init --node, read with --dir); with --spec, add %s to the spec file", what, name)
		}
		return s, nil, nil
	}
	data, err := regular.ReadFile(path, cluster.MaxSpecSize)
	if err != nil {
		return nil, nil, input.Errorf("%s: %v", path, pathx.UnwrapPath(err))
	}
	var f cluster.File
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, nil, input.Errorf("%s: %v", path, err)
	}
	_, inSpec := s.Node(name)
	switch {
	case c.Command.Name == "add" && node == "":
		return s, nil, nil
	case c.Command.Name == "add":
		n, err := cluster.FromFlags(s.Name, []string{node}, cluster.Options{PKIDir: s.PKIDir})
		if err != nil {
			return nil, nil, err
		}
		fn := n.Nodes[0]
		if fn.Name != name {
			return nil, nil, input.Errorf("%s %s: --node %s names another node", what, name, node)
		}
		if inSpec {
			// A re-run after the file was written: the same node again.
			return s, nil, nil
		}
		add := cluster.FileNode{Name: fn.Name, DNS: fn.DNSNames}
		for _, ip := range fn.IPs {
			add.IPs = append(add.IPs, ip.String())
		}
		f.Nodes = append(f.Nodes, add)
	case !inSpec:
		return s, nil, nil
	default:
		f.Nodes = slices.DeleteFunc(f.Nodes, func(n cluster.FileNode) bool { return n.Name == name })
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		return nil, nil, err
	}
	// Keep the comment that says which init made it.
	var head bytes.Buffer
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		head.WriteString(l)
	}
	out = append(head.Bytes(), out...)
	edited, err := cluster.Parse(out, path, cluster.Options{PKIDir: c.String("dir")})
	if err != nil {
		return nil, nil, err
	}
	return edited, out, nil
}
