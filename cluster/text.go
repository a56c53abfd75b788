package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// CheckText is the one check for control characters, applied to every
// path, name, address and template value, whether it comes from the spec
// or from a flag: a newline in a directory would inject a line into
// apiserver/etcd-flags or etcd.conf.yml (an extra --etcd-servers), a
// carriage return or an escape sequence would forge what an operator
// reads in a listing.
func CheckText(v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%q is not valid UTF-8", v)
	}
	for _, r := range v {
		// U+2028 and U+2029 end a line for some readers of YAML and logs.
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%q holds a control character (%U); names, paths and addresses are one line of printable text", v, r)
		}
	}
	return nil
}

// templateKeys may span lines: a deploy or restart command written as a
// YAML block is run with sh -c, where a newline separates commands. The
// values inserted into them still may not.
var templateKeys = map[string]bool{"deploy": true, "restart": true}

// checkTextTree applies CheckText to every key and scalar of the spec's
// YAML tree, so no field, present or future, escapes it.
func checkTextTree(file string, n *yaml.Node, path string) error {
	return walkYAML(n, path, func(field string, k, v *yaml.Node) (bool, error) {
		parent := strings.TrimSuffix(strings.TrimSuffix(field, k.Value), ".")
		if err := CheckText(k.Value); err != nil {
			return false, &Error{File: file, Line: k.Line, Field: parent, Msg: "key " + err.Error()}
		}
		if templateKeys[k.Value] && v.Kind == yaml.ScalarNode {
			if err := checkTemplateText(v.Value); err != nil {
				return false, &Error{File: file, Line: v.Line, Field: field, Msg: err.Error()}
			}
			return false, nil
		}
		return true, nil
	}, func(field string, n *yaml.Node) error {
		if err := CheckText(n.Value); err != nil {
			return &Error{File: file, Line: n.Line, Field: field, Msg: err.Error()}
		}
		return nil
	})
}

// checkTemplateText is CheckText with newlines and tabs allowed between
// commands.
func checkTemplateText(v string) error {
	for _, r := range v {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return fmt.Errorf("%q holds a control character (%U)", v, r)
		}
	}
	return nil
}

// oneDocument refuses a spec with a second YAML document: yaml.Unmarshal
// reads the first and silently drops the rest, so nodes listed after a
// "---" would be ignored.
func oneDocument(file string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first, second yaml.Node
	if err := dec.Decode(&first); err != nil {
		return yamlError(file, err)
	}
	err := dec.Decode(&second)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return yamlError(file, err)
	}
	return &Error{File: file, Line: second.Line, Msg: "a second YAML document (after ---): the spec is one document"}
}
