//go:build !linux

package issue

// immutable is only known on Linux; elsewhere a write fails and is
// rolled back instead.
func immutable(string) bool { return false }
