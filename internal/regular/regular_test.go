package regular

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
)

// readSoon is ReadFile, failing the test if it has not returned within
// a minute: a read that blocks on a FIFO or never ends on a device is
// the bug these tests look for, and must not hang the suite.
func readSoon(t *testing.T, path string, max int64) ([]byte, error) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		b, err := ReadFile(path, max)
		done <- res{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(time.Minute):
		t.Fatalf("ReadFile(%s) still blocked after a minute", path)
		return nil, nil
	}
}

// TestReadFileRefusesWhatCouldBlockOrNeverEnd reads a FIFO (which
// open(2) would wait on forever), /dev/zero and a link to it (which never
// end), a directory, a 2 GiB sparse file and a file one byte over the
// cap: each is bad input (exit 2) naming the path and what it is; a
// missing file keeps fs.ErrNotExist, and a file at the cap is read.
func TestReadFileRefusesWhatCouldBlockOrNeverEnd(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zeroLink := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zeroLink); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse")
	if err := os.WriteFile(sparse, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 2<<30); err != nil {
		t.Fatal(err)
	}
	over := filepath.Join(dir, "over")
	if err := os.WriteFile(over, make([]byte, 1025), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        "is a FIFO, not a regular file",
		dir:         "is a directory, not a regular file",
		"/dev/zero": "is a device, not a regular file",
		zeroLink:    "is a device, not a regular file",
		sparse:      "is larger than 1 KiB",
		over:        "is larger than 1 KiB",
	} {
		_, err := readSoon(t, path, 1024)
		var ic input.Coder
		if !errors.As(err, &ic) || ic.ExitCode() != input.ExitCode || !strings.HasPrefix(err.Error(), path+" "+want) {
			t.Errorf("ReadFile(%s): %v, want an input error %q", path, err, path+" "+want)
		}
		if cause := pathx.UnwrapPath(err); !strings.HasPrefix(cause.Error(), want) || !errors.As(cause, &ic) {
			t.Errorf("UnwrapPath(ReadFile(%s)) = %v, want the input error %q without the path", path, cause, want)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 1024); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	at := filepath.Join(dir, "at")
	os.WriteFile(at, make([]byte, 1024), 0o600)
	if b, err := ReadFile(at, 1024); err != nil || len(b) != 1024 {
		t.Errorf("file at the cap: %d bytes, %v", len(b), err)
	}
}

// TestReadFileStopsAFileThatGrows reads a file another process keeps
// appending to, starting under the cap: the read stops one byte past the
// cap and refuses it, however long the writer goes on.
func TestReadFileStopsAFileThatGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grows")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.Write(chunk); err != nil {
				return
			}
			// Keep the disk use bounded: start over when far past the cap.
			if info, _ := f.Stat(); info != nil && info.Size() > 64<<20 {
				f.Truncate(0)
				f.Seek(0, 0)
			}
		}
	}()
	for i := 0; i < 20; i++ {
		b, err := readSoon(t, path, 1<<20)
		if err == nil && len(b) > 1<<20 {
			t.Fatalf("read %d bytes, over the 1 MiB cap", len(b))
		}
		if err != nil && !strings.Contains(err.Error(), "is larger than 1 MiB") {
			t.Fatalf("err = %v, want nil or the cap's refusal", err)
		}
	}
}

// TestReadDirNeverOpensWhatCouldBlock lists a FIFO and a regular file as
// directories: bad input naming the path, without blocking.
func TestReadDirNeverOpensWhatCouldBlock(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	for path, want := range map[string]string{fifo: "is a FIFO, not a directory", file: "is a regular file, not a directory"} {
		done := make(chan error, 1)
		go func() { _, err := ReadDir(path); done <- err }()
		select {
		case err := <-done:
			var ic input.Coder
			if !errors.As(err, &ic) || err.Error() != path+" "+want {
				t.Errorf("ReadDir(%s): %v, want the input error %q", path, err, path+" "+want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("ReadDir(%s) still blocked after a minute", path)
		}
	}
	if es, err := ReadDir(dir); err != nil || len(es) != 2 || es[0].Name() != "fifo" {
		t.Errorf("ReadDir(dir) = %v, %v", es, err)
	}
}
