package cluster

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FromFlags builds a spec for the simple case, from --node flags of the
// form NAME=IP[,IP|DNS...] (IPs and DNS names may be mixed after the "=").
// The result is validated exactly like a spec file, so the same rules and
// messages apply.
func FromFlags(name string, nodes []string, o Options) (*Spec, error) {
	if len(nodes) == 0 {
		return nil, &Error{Field: "--node", Msg: "no nodes: give --spec FILE or at least one --node NAME=IP"}
	}
	r := File{Name: name}
	for _, v := range nodes {
		nodeName, hosts, ok := strings.Cut(v, "=")
		if !ok || nodeName == "" || hosts == "" {
			return nil, &Error{Field: "--node", Msg: fmt.Sprintf("%q must look like NAME=IP[,IP|DNS...]", v)}
		}
		var ips, dns []string
		for _, h := range strings.Split(hosts, ",") {
			h = strings.TrimSpace(h)
			if looksLikeIP(h) {
				ips = append(ips, h)
			} else {
				dns = append(dns, h)
			}
		}
		if len(ips) == 0 {
			return nil, &Error{Field: "--node", Msg: fmt.Sprintf("%q has no IP address", v)}
		}
		r.Nodes = append(r.Nodes, FileNode{Name: nodeName, IPs: ips, DNS: dns})
	}
	data, err := yaml.Marshal(r)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data, "", o)
	if err != nil {
		// Point at the flag, not at a YAML line the user never wrote.
		if se, ok := err.(*Error); ok && !strings.HasPrefix(se.Field, "--") {
			se.Line = 0
			if strings.HasPrefix(se.Field, "nodes") {
				se.Field = "--node " + se.Field
			} else if se.Field == "pkiDir" {
				se.Field = "--dir (with the working directory)"
			}
		}
		return nil, err
	}
	return s, nil
}

// looksLikeIP is deliberately loose: anything made of digits, dots and
// colons is meant as an IP, so "10.0.0.300" is reported as a bad IP rather
// than accepted as a DNS name.
func looksLikeIP(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if !(r >= '0' && r <= '9' || r == '.' || r == ':' || r >= 'a' && r <= 'f' && strings.Contains(h, ":")) {
			return false
		}
	}
	return true
}

// Defaults returns a spec with no nodes and every default, for commands
// that only need the PKI directory and certificate settings (issue).
func Defaults(pkiDir string) *Spec {
	s := &Spec{Name: "etcd", PKIDir: pkiDir,
		CA:   CA{CommonName: DefaultCACommonName, Key: KeySpec{AlgECDSA, 256}, Validity: DefaultCAValidity},
		Leaf: Leaf{Key: KeySpec{AlgECDSA, 256}, Validity: DefaultLeafValidity, RenewBefore: DefaultRenewBefore},
	}
	return s
}
