package issue

import (
	"os"
	"syscall"
	"unsafe"
)

// immutable reports whether path carries the immutable or append-only
// attribute (chattr +i / +a): such a file cannot be replaced nor such a
// directory written, even by root, and W_OK says nothing about it.
func immutable(path string) bool {
	// O_NONBLOCK: open(2) of a FIFO would wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	const (
		fsIocGetflags = 0x80086601 // FS_IOC_GETFLAGS
		immutableFl   = 0x10       // FS_IMMUTABLE_FL
		appendFl      = 0x20       // FS_APPEND_FL
	)
	var flags int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocGetflags, uintptr(unsafe.Pointer(&flags))); errno != 0 {
		return false
	}
	return flags&(immutableFl|appendFl) != 0
}
