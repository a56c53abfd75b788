package pkilock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/etcdpki/etcdpki/internal/input"
)

func TestSecondWriterFailsAtOnceNamingTheLock(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, File)) {
		t.Fatalf("second Acquire: %v, want ErrLocked naming %s", err, filepath.Join(dir, File))
	}
	first.Release()
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	again.Release()
	again.Release() // twice is harmless
	// Taking the lock changes no byte: a run that only locks changes nothing.
	if b, err := os.ReadFile(filepath.Join(dir, File)); err != nil || len(b) != 0 {
		t.Errorf("lock file holds %q (%v), want it empty", b, err)
	}
}

func TestMissingPKIDirIsAnError(t *testing.T) {
	if _, err := Acquire(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("Acquire in a missing directory succeeded")
	}
}

// TestOnlyARegularFileIsALock puts what an operator or an attacker could
// leave at PKI/rotate.lock: each is refused at once with bad input (exit
// 2) naming the lock, without blocking (a FIFO would block open(2)
// forever) and without changing it.
func TestOnlyARegularFileIsALock(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		make       func(t *testing.T, path string) error
	}{
		{"fifo", "a FIFO", func(t *testing.T, path string) error { return syscall.Mkfifo(path, 0o600) }},
		{"directory", "a directory", func(t *testing.T, path string) error { return os.Mkdir(path, 0o700) }},
		{"symlink to a file", "a symbolic link", func(t *testing.T, path string) error {
			target := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				return err
			}
			return os.Symlink(target, path)
		}},
		{"dangling symlink", "a symbolic link", func(t *testing.T, path string) error {
			return os.Symlink(filepath.Join(t.TempDir(), "missing"), path)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, File)
			if err := tc.make(t, path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(path)
			h, err := Acquire(dir)
			if err == nil {
				h.Release()
				t.Fatalf("Acquire over %s succeeded", tc.name)
			}
			var ic input.Coder
			want := "lock " + path + " is " + tc.want + ", not a regular file; remove it"
			if !errors.As(err, &ic) || ic.ExitCode() != input.ExitCode || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Acquire: %v, want an input error starting %q", err, want)
			}
			after, _ := os.Lstat(path)
			if after.Mode() != before.Mode() {
				t.Errorf("mode changed: %v -> %v", before.Mode(), after.Mode())
			}
		})
	}
}
