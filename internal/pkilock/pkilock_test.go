package pkilock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
