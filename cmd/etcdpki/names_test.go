package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// snapshot lists every path under root with its mode, link target or
// content hash: two equal snapshots mean nothing on disk changed. The
// directories in skip are left out (odd files a plain read would block on
// or exhaust memory with).
func snapshot(t *testing.T, root string, skip ...string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains(skip, p) {
			return filepath.SkipDir
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(&b, "%s %v", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestEveryNameArgumentFollowsTheNameRule sweeps every command's name
// arguments with names that would lead out of, or nowhere in, the PKI
// directory: each exits 2 with one line naming the argument, and nothing
// on disk changes, inside the PKI or outside it (a sentinel file where
// ../../victim leads from PKI/nodes/).
func TestEveryNameArgumentFollowsTheNameRule(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	initPKI(t, root)
	pkiDir := filepath.Join(root, "pki")
	if err := os.MkdirAll(filepath.Join(root, "victim"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "victim", "sentinel"), []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "adoptsrc"), 0o700); err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"member", "add", "--dir", pkiDir, "@N"},
		{"member", "add", "--dir", pkiDir, "--node", "@N=127.0.0.9", "@N"},
		{"member", "remove", "--dir", pkiDir, "@N"},
		{"certs", "renew", "--dir", pkiDir, "@N"},
		{"certs", "renew", "--dir", pkiDir, "n1", "@N"},
		{"certs", "revoke", "--dir", pkiDir, "@N"},
		{"issue", "--dir", pkiDir, "--ip", "127.0.0.9", "server", "@N"},
		{"issue", "--dir", pkiDir, "client", "@N"},
		{"issue", "--dir", pkiDir, "--out", filepath.Join(root, "out"), "client", "@N"},
		{"adopt", "--dir", pkiDir, "--node-dir", "@N=" + filepath.Join(root, "adoptsrc")},
		{"adopt", "--dir", pkiDir, "--client-dir", "@N=" + filepath.Join(root, "adoptsrc")},
		{"init", "--dir", filepath.Join(root, "pki2"), "--node", "@N=127.0.0.1"},
		{"init", "--dir", filepath.Join(root, "pki2"), "--node", "n1=127.0.0.1", "--node", "@N=127.0.0.2"},
		{"init", "--dir", filepath.Join(root, "pki2"), "--name", "@N", "--node", "n1=127.0.0.1"},
	}
	names := []string{"../x", "/abs", "a/b", ".", "..", "../../victim", "../../victim/sentinel", "nodes/../../victim", "a b", ""}
	for _, cmd := range commands {
		for _, name := range names {
			args := []string{"etcdpki"}
			for _, a := range cmd {
				args = append(args, strings.ReplaceAll(a, "@N", name))
			}
			t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
				before := snapshot(t, root)
				var stdout, stderr bytes.Buffer
				code := run(t.Context(), args, &stdout, &stderr)
				if code != 2 {
					t.Errorf("exit %d, want 2; stderr %q", code, stderr.String())
				}
				msg := stderr.String()
				if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
					t.Errorf("stderr is not one line: %q", msg)
				}
				if name != "" && !strings.Contains(msg, name) {
					t.Errorf("stderr does not name %q: %q", name, msg)
				}
				if after := snapshot(t, root); after != before {
					t.Errorf("the tree changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}
	}
}
