package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/fsnotify/fsnotify"
)

// Defaults for Watch.
const (
	// DefaultInterval is how often --watch checks expiry without an
	// event. Hourly is plenty for certificates that live for months and
	// are due a month early; file events trigger a check at once anyway.
	DefaultInterval = time.Hour
	// retryDelay is how soon a failed pass is tried again (a cron run
	// holding the lock, a member that was down): soon enough that a
	// replaced certificate is in effect within minutes, slow enough not to
	// hammer a cluster that is in trouble.
	retryDelay = time.Minute
	// DefaultDebounce gathers the burst of events one renewal makes (a
	// versioned directory, a symlink swap per store, a backup) into one
	// check.
	DefaultDebounce = time.Second
)

// WatchOptions control Watch.
type WatchOptions struct {
	Options
	// Interval between checks when nothing happens; 0 means DefaultInterval.
	Interval time.Duration
	// Debounce is the quiet time after a file event before checking; 0
	// means DefaultDebounce.
	Debounce time.Duration
	// Load expands the spec file again when it changes (cmd hands its
	// one spec loader down, so no spec is expanded below cmd); a load
	// that fails keeps the previous inventory. Nil means the inventory
	// Watch was handed stays for the whole watch.
	Load func() (*pki.Inventory, error)
}

// Watch runs until ctx is cancelled: a rotation pass at start, every
// Interval, and whenever certificate files in the PKI directory or the
// spec file change. Files replaced from outside are validated (pair,
// chain, SANs) and put into effect as Run does; a node added to the spec gets
// its certificates issued. A failed pass is logged and retried at the
// next event or tick. Cancelling ctx lets the current step finish, then
// Watch returns nil.
func Watch(ctx context.Context, inv *pki.Inventory, o WatchOptions) error {
	if err := runner.CheckInventory("watch", inv); err != nil {
		return err
	}
	if err := o.defaults(); err != nil {
		return err
	}
	if o.DryRun {
		return &input.Error{Err: errors.New("--watch and --dry-run do not go together")}
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()
	// The spec is expanded again only when it is reloaded (o.Load):
	// every pass and every watch list uses wt.inv.
	wt := &watcher{o: o, inv: inv, w: w, log: runner.NewReportLogger(o.Reporter, "watch")}
	wt.addWatches()
	var retry <-chan time.Time
	if !wt.pass(ctx) {
		retry = time.After(min(retryDelay, o.Interval))
	}
	wt.log.Step(stepWatch, "").Info("watching %s and %s; checking every %s", inv.Spec.PKIDir, orNone(inv.Spec.File), o.Interval)

	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	var debounce <-chan time.Time
	specChanged := false
	for {
		select {
		case <-ctx.Done():
			wt.log.Step(stepWatch, "").Err(context.Cause(ctx)).Done("stopping: %v", context.Cause(ctx))
			return nil
		case <-tick.C:
			retry = nil
			if !wt.pass(ctx) {
				retry = time.After(min(retryDelay, o.Interval))
			}
		case <-retry:
			retry = nil
			if !wt.pass(ctx) {
				retry = time.After(min(retryDelay, o.Interval))
			}
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch: file watcher closed")
			}
			switch wt.classify(ev) {
			case evSpec:
				specChanged = true
			case evCert:
			default:
				continue
			}
			debounce = time.After(o.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch: file watcher closed")
			}
			// An overflow means lost events: check everything now.
			wt.log.Step(stepWatch, "").Err(err).Warn("warning: file watcher: %v", err)
			debounce = time.After(o.Debounce)
		case <-debounce:
			debounce = nil
			if specChanged {
				specChanged = false
				wt.reloadSpec()
			}
			retry = nil
			if !wt.pass(ctx) {
				retry = time.After(min(retryDelay, o.Interval))
			}
			wt.addWatches()
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "(no spec file)"
	}
	return s
}

type watcher struct {
	o WatchOptions
	// inv is the spec in effect; reloadSpec replaces it.
	inv *pki.Inventory
	w   *fsnotify.Watcher
	log *runner.Logger
}

// pass runs one rotation and reports whether it succeeded. Its own writes cause events that bring the
// watcher back for a check that finds everything in effect and says
// nothing, so they never trigger a second rotation.
func (wt *watcher) pass(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	r := newLeafRun(wt.o.Options, wt.inv, wt.log)
	r.quiet = true
	r.Log.Start = time.Now()
	if _, err := r.run(ctx); err != nil {
		var ie *runner.InterruptedError
		if errors.As(err, &ie) {
			wt.log.Step(stepWatch, "").Err(err).Failed("%v", err)
			return true
		}
		wt.log.Step(stepWatch, "").Err(err).Failed("rotation failed, retrying in %s or at the next change: %v", min(retryDelay, wt.o.Interval), err)
		return false
	}
	return true
}

// reloadSpec picks up an edited spec; the pass that follows issues the
// certificates and configs of nodes new to it. A spec that does not load
// keeps the old one.
func (wt *watcher) reloadSpec() {
	if wt.o.Load == nil {
		wt.log.Step(stepSpec, wt.inv.Spec.File).Skipped("spec changed; this watch was given no loader, keeping the previous one")
		return
	}
	inv, err := wt.o.Load()
	if err != nil {
		wt.log.Step(stepSpec, wt.inv.Spec.File).Err(err).Failed("spec changed but does not load, keeping the previous one: %v", err)
		return
	}
	wt.inv = inv
	wt.log.Step(stepSpec, inv.Spec.File).Done("spec reloaded")
}

// addWatches watches every directory a certificate can change in: the
// stores (where atomic swaps rename ..data, in the store's own
// directory), their current version
// directories (a tool writing through the symlinks), the directories
// above them (new nodes) and the spec's directory (editors replace the
// file). Adding an already watched directory is harmless.
func (wt *watcher) addWatches() {
	s, inv := wt.inv.Spec, wt.inv
	dirs := []string{s.PKIDir, filepath.Join(s.PKIDir, "nodes"), filepath.Join(s.PKIDir, "clients"), inv.Paths.CADir()}
	for _, t := range inv.Targets {
		dirs = append(dirs, filepath.Dir(t.Dir), t.Dir)
		if cur, err := atomicdir.Current(t.Dir); err == nil && cur != "" {
			// The version, and the store's own directory beside it.
			dirs = append(dirs, cur, filepath.Dir(cur))
		}
	}
	if s.File != "" {
		dirs = append(dirs, filepath.Dir(s.File))
	}
	slices.Sort(dirs)
	for _, d := range slices.Compact(dirs) {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		if err := wt.w.Add(d); err != nil {
			wt.log.Step(stepWatch, d).Err(err).Warn("warning: cannot watch %s: %v", d, err)
		}
	}
}

type eventKind int

const (
	evIgnore eventKind = iota
	evCert
	evSpec
)

func (wt *watcher) classify(ev fsnotify.Event) eventKind {
	if ev.Op == fsnotify.Chmod {
		return evIgnore
	}
	s := wt.inv.Spec
	if s.File != "" && filepath.Clean(ev.Name) == filepath.Clean(s.File) {
		return evSpec
	}
	if !strings.HasPrefix(ev.Name, s.PKIDir+string(filepath.Separator)) {
		return evIgnore
	}
	base := filepath.Base(ev.Name)
	switch {
	case base == atomicdir.DataLink, strings.HasSuffix(base, pki.CertExt), strings.HasSuffix(base, pki.KeyExt):
		return evCert
	case ev.Has(fsnotify.Create) && !strings.HasPrefix(base, "."):
		// A new node or client directory: watch it too.
		if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
			return evCert
		}
	}
	return evIgnore
}
