package issue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/pkilock"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
	"github.com/etcdpki/etcdpki/pki"
)

// TestInitCrashAtEveryStepConverges stops a first init of three nodes,
// and a `certs renew --all` of them, at each of its filesystem steps in
// turn, as a kill would: right after the kill every pair in effect is
// whole (for renew, the old or the new one, never a gap), and running it
// again converges.
func TestInitCrashAtEveryStepConverges(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	ctx := context.Background()
	base, _ := initTree(t, threeNodes)
	for _, tc := range []struct {
		name     string
		seed     bool // start from base's PKI
		minSteps int
		run      func(inv *pki.Inventory) error
	}{
		{"init", false, 50, func(inv *pki.Inventory) error {
			_, err := Init(ctx, inv, Options{SpecYAML: []byte("name: test\n")})
			return err
		}},
		{"renew --all", true, 30, func(inv *pki.Inventory) error {
			_, err := Renew(ctx, inv, inv.Targets, RenewOptions{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			steps := 0
			for n := 1; ; n++ {
				pkiDir := filepath.Join(ramdir.TempDir(t), "pki")
				if tc.seed {
					copyTree(t, base.PKIDir, pkiDir)
				}
				s := spec(t, threeNodes, pkiDir)
				inv := pki.New(s)
				stopped := crashpoint.RunUntilStepIn(t, pkiDir, n, func() error { return tc.run(inv) })
				if stopped == "" {
					break
				}
				steps++
				if tc.seed {
					for id, p := range pairsInEffect(t, s) {
						if p == "" {
							t.Errorf("killed at step %s: %s has no pair in effect", stopped, id)
						}
					}
				}
				checkPairsConsistent(t, s, stopped)
				if err := tc.run(inv); err != nil {
					t.Fatalf("killed at step %s; %s again: %v", stopped, tc.name, err)
				}
				checkConverged(t, s, stopped)
				if t.Failed() {
					return
				}
			}
			if steps < tc.minSteps {
				t.Fatalf("only %d steps: the hook does not see %s's writes", steps, tc.name)
			}
			t.Logf("%s of 3 nodes: killed at each of %d steps, every re-run converged", tc.name, steps)
		})
	}
}

// TestInitAddNodeCrashAtEveryStepConverges kills the init that adds a
// fourth member at each step; the re-run must still mark only it
// "existing".
func TestInitAddNodeCrashAtEveryStepConverges(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	ctx := context.Background()
	base, _ := initTree(t, threeNodes)
	grownYAML := strings.Replace(threeNodes, "clients:", "  - name: etcd-node-4\n    ips: [10.0.0.14]\nclients:", 1)
	for n := 1; ; n++ {
		pkiDir := filepath.Join(ramdir.TempDir(t), "pki")
		copyTree(t, base.PKIDir, pkiDir)
		s := spec(t, grownYAML, pkiDir)
		stopped := crashpoint.RunUntilStepIn(t, pkiDir, n, func() error { _, err := Init(ctx, pki.New(s), Options{}); return err })
		if stopped == "" {
			break
		}
		if _, err := Init(ctx, pki.New(s), Options{}); err != nil {
			t.Fatalf("killed at step %s; init again: %v", stopped, err)
		}
		checkConverged(t, s, stopped)
		if t.Failed() {
			return
		}
	}
}

// TestInitFailureAtEveryStepRollsBack makes each filesystem step of a
// first init, and of an init that adds a node, fail in turn: init must
// return the error and leave the tree as it found it.
func TestInitFailureAtEveryStepRollsBack(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	ctx := context.Background()
	base, _ := initTree(t, threeNodes)
	grownYAML := strings.Replace(threeNodes, "clients:", "  - name: etcd-node-4\n    ips: [10.0.0.14]\nclients:", 1)
	for _, tc := range []struct {
		name string
		yaml string
		seed bool
	}{{"first init", threeNodes, false}, {"adding a node", grownYAML, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for n := 1; ; n++ {
				pkiDir := filepath.Join(ramdir.TempDir(t), "pki")
				if tc.seed {
					copyTree(t, base.PKIDir, pkiDir)
				}
				before := contents(t, pkiDir)
				s := spec(t, tc.yaml, pkiDir)
				failed, err := crashpoint.FailAtStepIn(t, pkiDir, n, func() error { _, err := Init(ctx, pki.New(s), Options{}); return err })
				if failed == "" {
					if err != nil {
						t.Fatal(err)
					}
					break
				}
				if err == nil {
					// Past the point of no return (pruning): it must be whole.
					checkConverged(t, s, failed)
					continue
				}
				if !errors.Is(err, fs.ErrInvalid) {
					t.Errorf("failure at step %s: error %v does not wrap the cause", failed, err)
				}
				if after := contents(t, pkiDir); after != before {
					t.Fatalf("failure at step %s: the tree changed:\n%s", failed, diffLines(before, after))
				}
			}
		})
	}
}

// TestRenewFailureAtEveryStepRollsBack: a renewal that fails at any
// step leaves every pair as it was, and no backup of a renewal that did
// not happen.
func TestRenewFailureAtEveryStepRollsBack(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	ctx := context.Background()
	base, _ := initTree(t, threeNodes)
	for n := 1; ; n++ {
		pkiDir := filepath.Join(ramdir.TempDir(t), "pki")
		copyTree(t, base.PKIDir, pkiDir)
		before := contents(t, pkiDir)
		s := spec(t, threeNodes, pkiDir)
		failed, err := crashpoint.FailAtStepIn(t, pkiDir, n, func() error { _, err := Renew(ctx, pki.New(s), pki.New(s).Targets, RenewOptions{}); return err })
		if failed == "" {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if err == nil {
			checkConverged(t, s, failed)
			continue
		}
		if after := contents(t, pkiDir); after != before {
			t.Fatalf("failure at step %s: the tree changed:\n%s", failed, diffLines(before, after))
		}
	}
}

// pairsInEffect reads each target's pair through its public names, as
// etcd does, and returns its certificate bytes ("" when unreadable or
// mismatched).
func pairsInEffect(t *testing.T, s *cluster.Spec) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tg := range pki.New(s).Targets {
		c, cerr := os.ReadFile(tg.CertPath())
		k, kerr := os.ReadFile(tg.KeyPath())
		if cerr != nil || kerr != nil || checkPairs(map[string][]byte{"x.crt": c, "x.key": k}) != nil {
			out[tg.ID] = ""
			continue
		}
		out[tg.ID] = string(c)
	}
	return out
}

// checkPairsConsistent: wherever a pair can be read through its public
// names, its certificate and key belong together.
func checkPairsConsistent(t *testing.T, s *cluster.Spec, stopped string) {
	t.Helper()
	for _, tg := range pki.New(s).Targets {
		c, cerr := os.ReadFile(tg.CertPath())
		k, kerr := os.ReadFile(tg.KeyPath())
		if cerr == nil && kerr == nil {
			if err := checkPairs(map[string][]byte{"x.crt": c, "x.key": k}); err != nil {
				t.Errorf("killed at step %s: %s: a reader sees a mixed pair: %v", stopped, tg.ID, err)
			}
		}
	}
}

var tempName = regexp.MustCompile(`\.tmp[0-9]+$`)

// checkConverged is the state every run must end in: `certs list` all
// ok, every bundle's ca.crt the one CA, every member of the first
// bootstrap "new", no temporary files or versions never put in effect,
// every directory 0700.
func checkConverged(t *testing.T, s *cluster.Spec, stopped string) {
	t.Helper()
	p := pki.Paths{PKI: s.PKIDir}
	infos, err := pki.List(pki.New(s), 0, time.Now())
	if err != nil {
		t.Fatalf("after step %s: list: %v", stopped, err)
	}
	for _, i := range infos {
		if i.Status != pki.StatusOK {
			t.Errorf("after step %s: %s is %s: %s", stopped, i.Name, i.Status, i.Reason)
		}
	}
	caPEM := mustRead(t, p.CACert())
	for _, tg := range pki.New(s).Targets {
		if got := mustRead(t, filepath.Join(tg.CADir, "ca.crt")); !bytes.Equal(got, caPEM) {
			t.Errorf("after step %s: %s holds another CA", stopped, filepath.Join(tg.CADir, "ca.crt"))
		}
	}
	for _, n := range s.Nodes {
		cfg, err := pki.ReadNodeConfig(p.NodeConfig(n.Name))
		if err != nil {
			t.Errorf("after step %s: %v", stopped, err)
			continue
		}
		want := "new"
		if n.Name == "etcd-node-4" {
			want = "existing"
		}
		if cfg.InitialClusterState != want {
			t.Errorf("after step %s: %s has initial-cluster-state %q, want %q", stopped, n.Name, cfg.InitialClusterState, want)
		}
	}
	filepath.WalkDir(s.PKIDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("after step %s: %v", stopped, err)
			return nil
		}
		if tempName.MatchString(d.Name()) {
			t.Errorf("after step %s: temporary file left: %s", stopped, path)
		}
		if d.IsDir() && !strings.Contains(path, string(filepath.Separator)+"backup") {
			if info, _ := d.Info(); info.Mode().Perm() != atomicdir.DirMode {
				t.Errorf("after step %s: %s has mode %04o, want 0700", stopped, path, info.Mode().Perm())
			}
		}
		if d.Name() == atomicdir.DataLink {
			dir := filepath.Dir(path)
			cur, _ := atomicdir.Current(dir)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				v := filepath.Join(dir, e.Name())
				if e.IsDir() && strings.HasPrefix(e.Name(), "..") && v > cur {
					t.Errorf("after step %s: version never put in effect left: %s", stopped, v)
				}
			}
		}
		return nil
	})
}

// contents records every path, mode, link and content of a tree (not
// times: a rollback touches directories), the lock file aside, which
// a run that fails may leave.
func contents(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Name() == pkilock.File {
			return nil
		}
		info, _ := os.Lstat(p)
		line := fmt.Sprintf("%s %v", p, info.Mode())
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		} else if info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x", data)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func diffLines(a, b string) string {
	in := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		in[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		in[l]--
	}
	var out []string
	for l, n := range in {
		if len(l) > 160 {
			l = l[:160] + "..."
		}
		if n > 0 {
			out = append(out, "- "+l)
		} else if n < 0 {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// copyTree copies a PKI tree, links as links and modes as they are.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return err
			}
			return os.Chmod(dst, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				return err
			}
			return os.Chmod(dst, info.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIssueCrashAtEveryStepConverges kills `etcdpki issue` at each step;
// issuing again leaves a whole bundle: the pair matching, the one CA, no
// temporary files.
func TestIssueCrashAtEveryStepConverges(t *testing.T) {
	skipShort(t)
	t.Parallel() // steps counted under its own directories: see crashpoint.RunUntilStepIn
	ctx := context.Background()
	base, _ := initTree(t, threeNodes)
	req := OneRequest{Kind: "server", Name: "gw", Hosts: []string{"10.0.0.21"}}
	steps := 0
	for n := 1; ; n++ {
		pkiDir := filepath.Join(ramdir.TempDir(t), "pki")
		copyTree(t, base.PKIDir, pkiDir)
		s := spec(t, threeNodes, pkiDir)
		stopped := crashpoint.RunUntilStepIn(t, pkiDir, n, func() error { _, err := One(ctx, pki.New(s), req, Options{}); return err })
		if stopped == "" {
			break
		}
		steps++
		tg, err := One(ctx, pki.New(s), req, Options{})
		if err != nil {
			t.Fatalf("killed at step %s; issue again: %v", stopped, err)
		}
		c, k := mustRead(t, tg.CertPath()), mustRead(t, tg.KeyPath())
		if err := checkPairs(map[string][]byte{"x.crt": c, "x.key": k}); err != nil {
			t.Errorf("killed at step %s: %v", stopped, err)
		}
		if !bytes.Equal(mustRead(t, filepath.Join(tg.Dir, "ca.crt")), mustRead(t, pki.Paths{PKI: pkiDir}.CACert())) {
			t.Errorf("killed at step %s: the bundle holds another CA", stopped)
		}
		checkConverged(t, s, stopped)
	}
	if steps < 5 {
		t.Fatalf("only %d steps: the hook does not see issue's writes", steps)
	}
}

// skipShort: a run killed at each of its steps in turn takes seconds;
// make test-short (the fast local loop) skips it, CI never does.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-point harness: not in -short")
	}
}
