package regular

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/etcdpki/etcdpki/internal/input"
)

// TestReadFileNeverOpensWhatCouldBlock reads a FIFO (which open(2) would
// wait on forever), a directory and a missing file: the first two are
// bad input naming the path, the last keeps fs.ErrNotExist.
func TestReadFileNeverOpensWhatCouldBlock(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{fifo: "is a FIFO, not a regular file", dir: "is a directory, not a regular file"} {
		_, err := ReadFile(path)
		var ic input.Coder
		if !errors.As(err, &ic) || ic.ExitCode() != input.ExitCode || !strings.HasPrefix(err.Error(), path+" "+want) {
			t.Errorf("ReadFile(%s): %v, want an input error %q", path, err, want)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("data"), 0o600)
	if b, err := ReadFile(f); err != nil || string(b) != "data" {
		t.Errorf("regular file: %q %v", b, err)
	}
}
