package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/cluster"
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
		return "", usagef("%s: %v", defaultSpec, err)
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

// loadSpec reads the spec from --spec, ./etcdpki.yaml, or --node flags.
// needNodes=false allows a bare --dir for commands that only sign.
func loadSpec(c *cli.Context, needNodes bool) (*cluster.Spec, error) {
	o := cluster.Options{PKIDir: c.String("dir")}
	path := c.String("spec")
	var nodes []string
	if c.Command.HasName("init") {
		nodes = c.StringSlice("node")
	}
	if path != "" && len(nodes) > 0 {
		return nil, usagef("give either --spec or --node, not both")
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
		return cluster.Defaults(absPath(o.PKIDir)), nil
	case needNodes && c.Command.HasName("init"):
		return nil, usagef("no cluster spec: give --spec FILE, or --dir DIR with --node NAME=IP for each member")
	}
	return nil, usagef("no cluster spec: give --spec FILE (or run where %s is)", defaultSpec)
}
