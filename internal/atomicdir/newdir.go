package atomicdir

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// NewDir creates dir holding files (whose names may contain slashes) in
// one rename: they are written and synced in a staging directory beside
// dir, which is then renamed to dir. A crash therefore leaves no dir or a
// whole one, never a half-written one; the staging directory a crash
// leaves is removed by the next NewDir beside it. dir must not exist.
// undo removes dir again, with the parents NewDir created.
func NewDir(dir string, files []File) (undo func(), err error) {
	var b Batch
	parent := filepath.Dir(dir)
	if err := b.mkdirAll(parent); err != nil {
		b.Abort()
		return nil, err
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		b.Abort()
		return nil, fmt.Errorf("read %s: %w", parent, err)
	}
	for _, e := range entries {
		if e.IsDir() && isTemp(e.Name()) {
			if err := remove(filepath.Join(parent, e.Name())); err != nil {
				b.Abort()
				return nil, err
			}
		}
	}
	stage := filepath.Join(parent, fmt.Sprintf(".%s.tmp%d", filepath.Base(dir), time.Now().UnixNano()))
	fail := func(err error) (func(), error) {
		os.RemoveAll(stage)
		b.Abort()
		return nil, err
	}
	if _, err := os.Lstat(dir); err == nil {
		return fail(fmt.Errorf("create %s: already exists", dir))
	}
	var sb Batch // the directories inside stage
	if err := sb.mkdirAll(stage); err != nil {
		return fail(err)
	}
	var synced []string
	for _, f := range files {
		p := filepath.Join(stage, f.Name)
		if err := sb.mkdirAll(filepath.Dir(p)); err != nil {
			return fail(err)
		}
		if err := writeNew(p, f.Data, f.Mode, false); err != nil {
			return fail(err)
		}
		synced = append(synced, p)
	}
	synced = append(synced, sb.created...)
	if err := syncAll(synced); err != nil {
		return fail(err)
	}
	if err := rename(stage, dir); err != nil {
		return fail(fmt.Errorf("create %s: %w", dir, err))
	}
	if err := syncPath(parent); err != nil {
		os.RemoveAll(dir)
		return fail(err)
	}
	return func() {
		os.RemoveAll(dir)
		b.Abort()
	}, nil
}
