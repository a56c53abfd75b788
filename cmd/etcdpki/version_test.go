package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/etcdpki/etcdpki", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"checkout with changes", stamped, true, "v1.2.3, revision 0123456789abcdef0123456789abcdef01234567 (2026-12-01T10:00:00Z), modified, go1.26.0, tested against etcd " + strings.Join(testedEtcd, ", ")},
		{"go install", installed, true, "v1.2.3, revision unknown (no VCS stamp: go install, -buildvcs=false or a git worktree), go1.26.0, tested against etcd " + strings.Join(testedEtcd, ", ")},
		{"no build information", nil, false, "unknown (no build information), tested against etcd " + strings.Join(testedEtcd, ", ")},
	} {
		if got := formatVersion(tc.bi, tc.ok); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestVersionFlag runs urfave's own --version and -v through run: exit 0,
// one line on stdout, nothing on stderr.
func TestVersionFlag(t *testing.T) {
	for _, flag := range []string{"--version", "-v"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"etcdpki", flag}, &stdout, &stderr); code != 0 {
			t.Fatalf("etcdpki %s exited %d: %s", flag, code, stderr.String())
		}
		want := "etcdpki version " + buildVersion() + "\n"
		if stdout.String() != want || stderr.Len() != 0 {
			t.Errorf("etcdpki %s: stdout %q, stderr %q; want stdout %q", flag, stdout.String(), stderr.String(), want)
		}
	}
}

// TestTestedEtcdIsWhatToolsEtcdBuilds keeps --version's "tested against"
// true: it names exactly the etcd server version tools/etcd builds.
func TestTestedEtcdIsWhatToolsEtcdBuilds(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "tools", "etcd", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*go\.etcd\.io/etcd/server/v3 (v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("tools/etcd/go.mod requires no go.etcd.io/etcd/server/v3")
	}
	if got := strings.Join(testedEtcd, ", "); got != string(m[1]) {
		t.Errorf("--version says tested against etcd %s; tools/etcd builds %s", got, m[1])
	}
}

// TestVersionOfABuiltBinary builds etcdpki the way an operator does, with
// go build in a git checkout, and checks that --version names the
// commit it was built from, and "modified" once the tree has changes.
// go test binaries carry no VCS stamp, and go build stamps nothing in a
// linked git worktree (golang/go#58218), so the sources (as they are now,
// uncommitted edits included) are committed into a fresh repository in a
// temp dir and built there.
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds etcdpki: not in -short")
	}
	for _, tool := range []string{"git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing to stamp", err)
	}
	src := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", src, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "snapshot")
	head := git("rev-parse", "HEAD")

	version := func() string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "etcdpki")
		build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/etcdpki")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatalf("etcdpki --version: %v (want exit 0)", err)
		}
		return string(out)
	}
	clean := version()
	t.Logf("clean checkout: %s", clean)
	if want := "revision " + head + " ("; !strings.Contains(clean, want) || strings.Contains(clean, "modified") {
		t.Errorf("built from a clean checkout at %s, --version says %q", head, clean)
	}
	if err := os.WriteFile(filepath.Join(src, "untracked"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dirty := version(); !strings.Contains(dirty, "revision "+head+" (") || !strings.Contains(dirty, ", modified,") {
		t.Errorf("built from a checkout with changes, --version says %q", dirty)
	}
}
