package etcdtest

import (
	"errors"
	"fmt"
	"go/version"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
)

// Integration marks t as a test that runs real etcd processes. Under
// `go test -short` it skips t; otherwise it checks that the etcd and
// etcdctl binaries exist and fails t, saying to run `make etcd`, when they
// do not. A missing binary is a failure rather than a skip on purpose: CI
// must never pass because it quietly ran nothing.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts real etcd processes (skipped with -short)")
	}
	EtcdBin(t)
	EtcdctlBin(t)
}

// EtcdBin returns the etcd binary the tests run: $ETCD_BIN, or bin/etcd at
// the module root. It fails t with a clear message when the binary is
// missing.
func EtcdBin(t testing.TB) string {
	t.Helper()
	return binary(t, "ETCD_BIN", "etcd")
}

// EtcdctlBin returns the etcdctl binary: $ETCDCTL_BIN, or bin/etcdctl at the
// module root. It fails t with a clear message when the binary is missing.
func EtcdctlBin(t testing.TB) string {
	t.Helper()
	return binary(t, "ETCDCTL_BIN", "etcdctl")
}

// RefusalAlert returns the TLS alert, as a Go client prints it ("tls:
// ..."), that the etcd under test sends when it refuses a client
// certificate for a reason that has an alert of its own: modern, one of
// "tls: certificate required", "tls: unknown certificate authority" or
// "tls: expired certificate". That is what etcd built with Go 1.21 or later
// sends; an etcd built with an older Go (etcd 3.4, such as Debian's, built
// with Go 1.19) sends "tls: bad certificate" for every refusal. The Go
// version is read from `etcd --version`.
func RefusalAlert(t testing.TB, modern string) string {
	t.Helper()
	gov, err := etcdGoVersion(EtcdBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if version.Compare(gov, "go1.21") < 0 {
		return "tls: bad certificate"
	}
	return modern
}

// EtcdctlAtLeast reports whether the etcdctl under test is version
// major.minor or later, for behaviour that changed between releases (from
// 3.5, `etcdctl endpoint health` reports a member with an active alarm as
// unhealthy; 3.4 does not look at alarms). The version is read from
// `etcdctl version`.
func EtcdctlAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	bin := EtcdctlBin(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	m := etcdctlVersionLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s version names no version:\n%s", bin, out)
	}
	var maj, min int
	fmt.Sscan(string(m[1]), &maj)
	fmt.Sscan(string(m[2]), &min)
	return maj > major || maj == major && min >= minor
}

var (
	etcdctlVersionLine = regexp.MustCompile(`(?m)^etcdctl version: (\d+)\.(\d+)\.`)
	goVersionLine      = regexp.MustCompile(`(?m)^Go Version: (go\S+)`)
	goVersions         sync.Map // binary path -> Go version
)

// etcdGoVersion returns the Go version the etcd binary says it was built
// with.
func etcdGoVersion(bin string) (string, error) {
	if v, ok := goVersions.Load(bin); ok {
		return v.(string), nil
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %v", bin, err)
	}
	m := goVersionLine.FindSubmatch(out)
	if m == nil || !version.IsValid(string(m[1])) {
		return "", fmt.Errorf("%s --version names no Go version:\n%s", bin, out)
	}
	goVersions.Store(bin, string(m[1]))
	return string(m[1]), nil
}

func binary(t testing.TB, env, name string) string {
	t.Helper()
	path, err := findBinary(env, name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// findBinary resolves $env, falling back to bin/NAME at the module root so
// that a plain `go test ./...` after `make etcd` works without the
// Makefile's environment.
func findBinary(env, name string) (string, error) {
	path := os.Getenv(env)
	from, alt := "$"+env, "or point "+env+" at an existing "+name+" binary"
	if path == "" {
		root, err := ModuleRoot()
		if err != nil {
			return "", fmt.Errorf("find the %s binary: %v; set %s or run `make etcd`", name, err, env)
		}
		path = filepath.Join(root, "bin", name)
		from, alt = "the default location", "or set "+env+" to use another "+name
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s binary %s (%s) does not exist: run `make etcd` at the repository root to build etcd v3.6.16, %s", name, path, from, alt)
	case err != nil:
		return "", fmt.Errorf("%s binary %s: %w", name, path, err)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		return "", fmt.Errorf("%s binary %s (%s) is not an executable file: run `make etcd`, %s", name, path, from, alt)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%s binary %s: %w", name, path, err)
	}
	return abs, nil
}

// ModuleRoot walks up from the working directory (a test runs in its
// package directory) to the directory holding go.mod: where bin/, deploy/
// and cmd/ are, for every harness that needs them.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
