package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/etcdpki/etcdpki/internal/regular"
)

// ParseEnv reads an etcd.env back into variables (for the tests' members
// and for verify): KEY=VALUE lines, # comments, values single-quoted as
// NodeEnv writes them.
func ParseEnv(data []byte) (map[string]string, error) {
	m := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: not KEY=VALUE", i+1)
		}
		if strings.HasPrefix(v, "'") {
			if len(v) < 2 || !strings.HasSuffix(v, "'") {
				return nil, fmt.Errorf("line %d: unterminated quote", i+1)
			}
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
		}
		m[k] = v
	}
	return m, nil
}

// Env variables that name a member's CRLs.
const (
	EnvClientCRL = "ETCD_CLIENT_CRL_FILE"
	EnvPeerCRL   = "ETCD_PEER_CRL_FILE"
)

// BundleCRLProblem is what is wrong with the CRL node's etcd.env names:
// missing or unparsable in the bundle, so that its member, started from
// it, would refuse every connection; "" when it is fine or no config
// names one.
func (p Paths) BundleCRLProblem(node string) string {
	data, err := regular.ReadFile(p.NodeEnv(node))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return err.Error()
	}
	env, err := ParseEnv(data)
	if err != nil {
		return fmt.Sprintf("%s: %v", p.NodeEnv(node), err)
	}
	if env[EnvClientCRL] == "" && env[EnvPeerCRL] == "" {
		return ""
	}
	crl, err := regular.ReadFile(p.NodeCRL(node))
	if err != nil {
		return fmt.Sprintf("%s names a CRL but %s is unreadable (%v): the member would refuse every connection", p.NodeEnv(node), p.NodeCRL(node), err)
	}
	if _, err := ParseCRL(crl); err != nil {
		return fmt.Sprintf("%s: %v", p.NodeCRL(node), err)
	}
	return ""
}
