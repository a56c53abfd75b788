package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
	"go.yaml.in/yaml/v3"
)

// StartedNow digests the files of node n's bundle that etcd reads only at
// start. ok is false when the bundle has no ca.crt yet (a node whose
// certificates are still to be issued): there is nothing to compare.
func StartedNow(paths pki.Paths, n cluster.Node) (st Started, ok bool, err error) {
	ca, err := regular.ReadFile(filepath.Join(paths.NodeCertDir(n.Name), pki.CAFile), regular.MaxPEM)
	if errors.Is(err, fs.ErrNotExist) {
		return Started{}, false, nil
	}
	if err != nil {
		return Started{}, false, fmt.Errorf("node %s: read its CA bundle: %w", n.Name, err)
	}
	st.CA = digest(ca)
	cfg, err := regular.ReadFile(paths.NodeConfig(n.Name), regular.MaxState)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Started{}, false, fmt.Errorf("node %s: read its config: %w", n.Name, err)
	default:
		st.Config = configDigest(cfg)
	}
	env, err := regular.ReadFile(paths.NodeEnv(n.Name), regular.MaxState)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Started{}, false, fmt.Errorf("node %s: read its etcd.env: %w", n.Name, err)
	default:
		st.Env = envDigest(env)
	}
	return st, true, nil
}

// envDigest digests etcd.env as configDigest does etcd.conf.yml: without
// comments and the ETCD_INITIAL_* variables, which a running member
// ignores.
func envDigest(data []byte) string {
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "ETCD_INITIAL_") {
			continue
		}
		keep = append(keep, line)
	}
	return digest([]byte(strings.Join(keep, "\n")))
}

// configDigest digests what a running member's etcd.conf.yml means: the
// YAML without comments and without the initial-* keys. etcd reads
// initial-cluster, initial-cluster-state, initial-cluster-token and
// initial-advertise-peer-urls only when it bootstraps an empty data
// directory, so a change there (init rewrites initial-cluster on every
// member when a node is added to the spec) changes nothing for a member
// that runs, and restarting it for that would cost a leader change for
// nothing. Every other key counts. A file that does not parse is digested
// as bytes: any edit then counts as a change.
func configDigest(data []byte) string {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil || m == nil {
		return digest(data)
	}
	for k := range m {
		if strings.HasPrefix(k, "initial-") {
			delete(m, k)
		}
	}
	// yaml.v3 writes map keys sorted: the same meaning, the same bytes.
	norm, err := yaml.Marshal(m)
	if err != nil {
		return digest(data)
	}
	return digest(norm)
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
