package atomicdir

import "sync"

var (
	hookMu sync.Mutex
	hook   func(op, path string) error
)

// SetHook installs h, called before every change atomicdir makes on disk:
// op is "mkdir", "create", "chmod", "symlink", "rename" or "remove", path
// what it changes. It exists for crash tests: an error from h fails that
// step as the filesystem would (the caller then rolls back), and a panic
// in h stops the sequence right there, leaving the real files a kill -9
// would leave, for the next run to recover from. h runs on the writing
// goroutine. restore puts back the hook that was there before.
func SetHook(h func(op, path string) error) (restore func()) {
	hookMu.Lock()
	old := hook
	hook = h
	hookMu.Unlock()
	return func() {
		hookMu.Lock()
		hook = old
		hookMu.Unlock()
	}
}

func step(op, path string) error {
	hookMu.Lock()
	h := hook
	hookMu.Unlock()
	if h == nil {
		return nil
	}
	return h(op, path)
}
