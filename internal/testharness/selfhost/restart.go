package selfhost

import (
	"fmt"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
)

// Window is one restart as the harness's control script saw it: from
// the moment the restart command asked for it to the moment the process
// listened again.
type Window struct {
	Host       string
	Start, End time.Time
}

// Windows records the restarts made through the control script.
type Windows struct {
	mu   sync.Mutex
	list []Window
}

func (w *Windows) add(host string, start, end time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, Window{Host: host, Start: start, End: end})
}

// List is every restart so far, in the order they ended.
func (w *Windows) List() []Window {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Window(nil), w.list...)
}

// Contains says whether a failure that started at at and took took
// overlaps a window widened by before and after.
func (w *Windows) Contains(at time.Time, took, before, after time.Duration) bool {
	for _, x := range w.List() {
		if at.Before(x.End.Add(after)) && at.Add(took).After(x.Start.Add(-before)) {
			return true
		}
	}
	return false
}

// RestartTemplates makes every member and the apiserver restartable by
// the control script, recording each restart in the returned Windows,
// and returns the restart template for both (the control script with
// {{.Name}}): a spec whose nodes[].restart and kube-apiserver client's
// restart are it lets etcdpki's agents restart them as on real hosts.
func (e *Env) RestartTemplates() (string, *Windows) {
	w := &Windows{}
	e.Etcd.HandleControl(cluster.ClientAPIServer, func(verb string) error {
		if verb != "restart" {
			return fmt.Errorf("kube-apiserver: only restart is handled, not %q", verb)
		}
		return e.Kube.RestartAPIServer()
	})
	e.Etcd.ObserveControl(func(name, verb string, start, end time.Time) {
		if verb == "restart" {
			w.add(name, start, end)
		}
	})
	return e.Etcd.ControlCommand("restart"), w
}
