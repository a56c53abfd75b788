package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// defaultSpec is read when --spec is not given and the file exists, so
// an operator can cd into a cluster's directory and just run etcdpki.
const defaultSpec = "etcdpki.yaml"

// defaultSpecIfPresent returns defaultSpec when it exists, "" when it does
// not, and a usage error when it cannot be checked.
func defaultSpecIfPresent() (string, error) {
	if _, err := os.Stat(defaultSpec); err == nil {
		return defaultSpec, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", input.Errorf("%s: %v", defaultSpec, err)
	}
	return "", nil
}

// pkiSpecIfPresent returns DIR/etcdpki.yaml when it exists: the spec init
// wrote for a PKI made from flags. "" when dir is "" or it does not exist.
func pkiSpecIfPresent(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	p := filepath.Join(dir, pki.SpecFile)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", input.Errorf("%s: %v", p, err)
	}
	return "", nil
}

// specFlags are shared by every command that reads the cluster spec.
func specFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "spec", Aliases: []string{"f"}, Usage: "cluster spec `FILE` (default ./" + defaultSpec + " if present)"},
		&cli.StringFlag{Name: "dir", Aliases: []string{"d"}, Usage: "PKI `DIR`, overriding the spec's pkiDir"},
	}
}

// nodeFlags are for the flags-only mode of init.
func nodeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "node", Usage: "flags-only mode: a member as `NAME=IP[,IP|DNS...]` (repeat per member)"},
		&cli.StringFlag{Name: "name", Usage: "flags-only mode: cluster name (initial-cluster-token)"},
	}
}

// loadSpec reads the spec from --spec, --node flags, DIR/etcdpki.yaml for
// --dir DIR (the spec init wrote for a PKI made from flags), or
// ./etcdpki.yaml, in that order.
// needNodes=false allows a bare --dir for commands that only sign.
func loadSpec(c *cli.Context, needNodes bool) (*cluster.Spec, error) {
	s, err := readSpec(c, needNodes)
	if err != nil {
		return nil, err
	}
	// A PKI directory that is a file, a FIFO or a device is bad input,
	// said before anything reads or writes under it.
	if err := regular.CheckDir(s.PKIDir); err != nil {
		return nil, input.Errorf("PKI directory %s: %v", s.PKIDir, pathx.UnwrapPath(err))
	}
	if err := authDefault(c, s); err != nil {
		return nil, err
	}
	return s, cluster.CheckAuthNames(s)
}

// authDefault resolves a spec that leaves auth.enabled unset: init of a
// new PKI (no CA certificate yet) turns etcd's auth on, and records that
// in the PKI (pki.AuthDefaultFile) for every later command; an existing
// PKI keeps what it recorded, off when nothing.
func authDefault(c *cli.Context, s *cluster.Spec) error {
	if s.Auth.Set {
		return nil
	}
	if c.Command.HasName("init") {
		_, err := os.Lstat(pki.Paths{PKI: s.PKIDir}.CACert())
		if errors.Is(err, fs.ErrNotExist) {
			s.Auth.Enabled = true
			return nil
		}
	}
	return pki.ApplyAuthDefault(s)
}

// loadInventory is loadSpec expanded: what every command that acts on
// the cluster hands its operation.
func loadInventory(c *cli.Context, needNodes bool) (*pki.Inventory, error) {
	s, err := loadSpec(c, needNodes)
	if err != nil {
		return nil, err
	}
	return inventory(s), nil
}

// inventory is the one place the spec is expanded (pki.New): commands
// build the inventory here and hand it down, so that no package below
// cmd expands a spec of its own (internal/layering checks that).
func inventory(s *cluster.Spec) *pki.Inventory { return pki.New(s) }

// readSpec is loadSpec's spec: the --spec file, the flags, the PKI's own
// spec or the default file.
func readSpec(c *cli.Context, needNodes bool) (*cluster.Spec, error) {
	o := cluster.Options{PKIDir: c.String("dir")}
	path := c.String("spec")
	var nodes []string
	if c.Command.HasName("init") {
		nodes = c.StringSlice("node")
		o.CAKey = c.String("ca-key")
	}
	if path != "" && len(nodes) > 0 {
		return nil, input.Errorf("give either --spec or --node, not both")
	}
	if path == "" && len(nodes) == 0 {
		var err error
		if path, err = pkiSpecIfPresent(o.PKIDir); err != nil {
			return nil, err
		}
	}
	if path == "" && len(nodes) == 0 {
		var err error
		if path, err = defaultSpecIfPresent(); err != nil {
			return nil, err
		}
	}
	switch {
	case path != "":
		return cluster.Load(path, o)
	case len(nodes) > 0:
		return cluster.FromFlags(c.String("name"), nodes, o)
	case !needNodes && o.PKIDir != "":
		return cluster.Defaults(pathx.Abs(o.PKIDir)), nil
	case needNodes && c.Command.HasName("init"):
		return nil, input.Errorf("no cluster spec: give --spec FILE, or --dir DIR with --node NAME=IP for each member")
	}
	return nil, input.Errorf("no cluster spec: give --spec FILE (or run where %s is)", defaultSpec)
}

// flagsSpec renders the spec init built from --node flags as a spec file
// for PKI/etcdpki.yaml, with the command that made it in a comment, so
// that every later command given --dir finds the cluster there.
func flagsSpec(c *cli.Context, s *cluster.Spec) ([]byte, error) {
	f := cluster.File{Name: s.Name, PKIDir: "."}
	if s.CA.Token != nil {
		f.CA.Key = s.CA.Token.String()
	}
	for _, n := range s.Nodes {
		fn := cluster.FileNode{Name: n.Name, DNS: n.DNSNames}
		for _, ip := range n.IPs {
			fn.IPs = append(fn.IPs, ip.String())
		}
		f.Nodes = append(f.Nodes, fn)
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return nil, err
	}
	cmd := "etcdpki init"
	if c.String("dir") != "" {
		cmd += " --dir " + c.String("dir")
	}
	if c.String("name") != "" {
		cmd += " --name " + c.String("name")
	}
	for _, v := range c.StringSlice("node") {
		cmd += " --node " + v
	}
	if s.CA.Token != nil {
		cmd += " --ca-key '" + s.CA.Token.String() + "'"
	}
	head := "# Written by etcdpki init from flags:\n#   " + strings.ReplaceAll(cmd, "\n", " ") +
		"\n# Commands given --dir and no --spec read this file; pkiDir is this directory.\n"
	return append([]byte(head), data...), nil
}
