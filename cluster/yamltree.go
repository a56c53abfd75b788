package cluster

// The spec's YAML tree: one walk for every check made on it before it is
// decoded, and yaml.v3's errors turned into one located line.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// walkYAML visits every key of every mapping below n, depth first, with
// the key's dotted path ("nodes[0].dir"); key returns whether to descend
// into the value. scalar is called for every scalar that is not a
// mapping key and was descended into.
func walkYAML(n *yaml.Node, path string, key func(field string, k, v *yaml.Node) (bool, error), scalar func(field string, n *yaml.Node) error) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			field := k.Value
			if path != "" {
				field = path + "." + k.Value
			}
			descend, err := key(field, k, v)
			if err != nil {
				return err
			}
			if !descend {
				continue
			}
			if err := walkYAML(v, field, key, scalar); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := walkYAML(c, fmt.Sprintf("%s[%d]", path, i), key, scalar); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if scalar != nil {
			return scalar(path, n)
		}
	}
	return nil
}

// intKeys are the spec's integer fields. yaml.v3 silently truncates a
// float into an int ("peerPort: 2380.5" became 2380), so they are checked
// on the YAML tree before decoding.
var intKeys = map[string]bool{"clientPort": true, "peerPort": true, "keySize": true}

// checkWholeNumbers refuses a non-integer scalar under an integer key.
func checkWholeNumbers(file string, n *yaml.Node, path string) error {
	return walkYAML(n, path, func(field string, k, v *yaml.Node) (bool, error) {
		if intKeys[k.Value] && v.Kind == yaml.ScalarNode && v.Tag != "!!int" && v.Tag != "!!null" {
			return false, &Error{File: file, Line: v.Line, Field: field, Msg: fmt.Sprintf("%q is not a whole number", v.Value)}
		}
		return true, nil
	}, nil)
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns yaml.v3's multi-line errors into one located line.
func yamlError(file string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	first := strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
	if m := yamlLine.FindStringSubmatch(first); m != nil {
		line, _ := strconv.Atoi(m[1])
		text := m[2]
		if f := regexp.MustCompile(`field (\S+) not found in type cluster\.(\w+)`).FindStringSubmatch(text); f != nil {
			text = fmt.Sprintf("unknown key %q (in %s)", f[1], section(f[2]))
		}
		text = strings.ReplaceAll(text, "cluster.File", "spec")
		return &Error{File: file, Line: line, Msg: text}
	}
	return &Error{File: file, Msg: first}
}

func section(typ string) string {
	switch typ {
	case "FileCA":
		return "ca"
	case "FileCerts":
		return "certs"
	case "FileCRL":
		return "crl"
	case "FileNode":
		return "a node"
	case "FileClient":
		return "a client"
	case "FileAuth":
		return "auth"
	case "FilePermission":
		return "a client's permission"
	}
	return "the top level"
}
