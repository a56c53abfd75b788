package selfhost

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// APIObjects is how many ConfigMaps each apiserver worker keeps writing.
const APIObjects = 8

// WatchCatchUp bounds how long Stop waits for the watch to deliver the
// last write the load made.
const WatchCatchUp = 15 * time.Second

// APILoad works the apiserver: each worker creates its ConfigMaps, then
// gets and updates them in turn (a get must return the last value
// written), while one watch on all of them must stay unbroken and
// deliver every write.
type APILoad struct {
	cs     *kubernetes.Clientset
	ns     string
	label  string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	n      *counter
	stop   sync.Once
	final  Stats

	watchCancel context.CancelFunc
	watchDone   chan struct{}
	mu          sync.Mutex
	acked       map[string]uint64 // the last write acknowledged, by name
	seen        map[string]uint64 // the newest revision the watch delivered
}

// StartAPILoad starts a load through the apiserver as the admin, in a
// namespace of its own.
func (e *Env) StartAPILoad(t testing.TB) *APILoad {
	t.Helper()
	return StartAPILoad(t, e.Kube.Config, e.Namespace(t, "load"))
}

// StartAPILoad starts a load through the apiserver at cfg in namespace ns;
// Stop ends it (and the test's end does, if no one did).
func StartAPILoad(t testing.TB, cfg *rest.Config, ns string) *APILoad {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	// client-go's default limit (5/s) would pace the load, not the server.
	cfg.QPS, cfg.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("selfhost: apiserver load client: %v", err)
	}
	l := &APILoad{cs: cs, ns: ns, label: fmt.Sprintf("selfhost-load-%d", loadRuns.Add(1)), n: newCounter("apiserver"),
		acked: map[string]uint64{}, seen: map[string]uint64{}, watchDone: make(chan struct{})}
	// The watch starts from the namespace's current revision before any
	// write, so it must see every one of them.
	rv, err := l.listRV()
	if err != nil {
		t.Fatalf("selfhost: apiserver load: %v", err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	l.watchCancel = wcancel
	go l.watch(wctx, rv)
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for w := range LoadWorkers {
		l.wg.Go(func() { l.work(ctx, w) })
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

func (l *APILoad) listRV() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	list, err := l.cs.CoreV1().ConfigMaps(l.ns).List(ctx, metav1.ListOptions{LabelSelector: "load=" + l.label})
	if err != nil {
		return "", fmt.Errorf("list ConfigMaps in %s: %w", l.ns, err)
	}
	return list.ResourceVersion, nil
}

// object is one ConfigMap as its worker knows it: created or not, and
// the value it holds if the last write's outcome is known.
type object struct {
	name    string
	created bool
	want    string // "" after a write whose outcome is unknown
}

func (l *APILoad) work(ctx context.Context, w int) {
	objs := make([]object, APIObjects)
	for i := range objs {
		objs[i].name = fmt.Sprintf("%s-%d-%d", l.label, w, i)
	}
	tick := time.NewTicker(LoadPace * 5)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		o := &objs[i%len(objs)]
		if !o.created {
			l.create(o, i)
			continue
		}
		cm := l.get(o)
		if cm == nil {
			continue
		}
		l.update(o, cm, i)
	}
}

func (l *APILoad) create(o *object, i int) {
	val := strconv.Itoa(i)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: o.name, Namespace: l.ns, Labels: map[string]string{"load": l.label}},
		Data: map[string]string{"n": val}}
	var out *corev1.ConfigMap
	err := l.do("create", func(ctx context.Context) (err error) {
		out, err = l.cs.CoreV1().ConfigMaps(l.ns).Create(ctx, cm, metav1.CreateOptions{})
		return err
	})
	switch {
	case err == nil:
		o.created, o.want = true, val
		l.ack(out)
	case apierrors.IsAlreadyExists(err):
		// An earlier create whose answer was lost did happen.
		o.created, o.want = true, ""
	}
}

func (l *APILoad) get(o *object) *corev1.ConfigMap {
	var cm *corev1.ConfigMap
	err := l.do("get", func(ctx context.Context) (err error) {
		cm, err = l.cs.CoreV1().ConfigMaps(l.ns).Get(ctx, o.name, metav1.GetOptions{})
		if err == nil && o.want != "" && cm.Data["n"] != o.want {
			return fmt.Errorf("get of ConfigMap %s/%s returned n=%q after the update to n=%q was acknowledged", l.ns, o.name, cm.Data["n"], o.want)
		}
		return err
	})
	if err != nil {
		return nil
	}
	return cm
}

func (l *APILoad) update(o *object, cm *corev1.ConfigMap, i int) {
	val := strconv.Itoa(i)
	cm.Data = map[string]string{"n": val}
	var out *corev1.ConfigMap
	err := l.do("update", func(ctx context.Context) (err error) {
		out, err = l.cs.CoreV1().ConfigMaps(l.ns).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		o.want = ""
		return
	}
	o.want = val
	l.ack(out)
}

func (l *APILoad) do(op string, req func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*RequestTimeout)
	defer cancel()
	t0 := time.Now()
	err := req(ctx)
	l.n.record(op, t0, err)
	return err
}

// ack records a write the apiserver acknowledged, for the watch to
// deliver.
func (l *APILoad) ack(cm *corev1.ConfigMap) {
	rv, err := strconv.ParseUint(cm.ResourceVersion, 10, 64)
	if err != nil {
		l.n.failure(Failure{At: time.Now(), Op: "update", Err: fmt.Errorf("ConfigMap %s: resourceVersion %q is no etcd revision", cm.Name, cm.ResourceVersion)})
		return
	}
	l.mu.Lock()
	l.acked[cm.Name] = max(l.acked[cm.Name], rv)
	l.mu.Unlock()
}

// watch keeps one watch open from rv. A watch that ends (its channel
// closes, or it delivers an error) is a failure, and the next one resumes
// from the last revision delivered, so the check of Stop still holds; a
// revision already compacted away (410 Gone) resumes from a new list.
func (l *APILoad) watch(ctx context.Context, rv string) {
	defer close(l.watchDone)
	for ctx.Err() == nil {
		t0 := time.Now()
		// The watch lives as long as ctx: no request timeout here.
		w, err := l.cs.CoreV1().ConfigMaps(l.ns).Watch(ctx, metav1.ListOptions{LabelSelector: "load=" + l.label, ResourceVersion: rv})
		if ctx.Err() != nil {
			return
		}
		l.n.record("watch", t0, err)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		var gone bool
		rv, gone, err = l.follow(ctx, w, rv)
		w.Stop()
		if ctx.Err() != nil {
			return
		}
		l.n.failure(Failure{At: time.Now(), Op: "watch", Took: time.Since(t0), Err: err})
		if gone {
			rv = l.relist(ctx, rv)
		}
	}
}

// relist lists the load's ConfigMaps after their watch fell behind the
// compaction, records what it finds as seen and returns the list's
// revision (rv again when the list fails, to be retried).
func (l *APILoad) relist(ctx context.Context, rv string) string {
	t0 := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 3*RequestTimeout)
	defer cancel()
	list, err := l.cs.CoreV1().ConfigMaps(l.ns).List(rctx, metav1.ListOptions{LabelSelector: "load=" + l.label})
	l.n.record("list", t0, err)
	if err != nil {
		sleep(ctx, time.Second)
		return rv
	}
	for i := range list.Items {
		l.saw(&list.Items[i])
	}
	return list.ResourceVersion
}

func (l *APILoad) saw(cm *corev1.ConfigMap) {
	if n, err := strconv.ParseUint(cm.ResourceVersion, 10, 64); err == nil {
		l.mu.Lock()
		l.seen[cm.Name] = max(l.seen[cm.Name], n)
		l.mu.Unlock()
	}
}

// follow reads w until it ends and returns the last revision delivered,
// whether the watch ended because that revision is compacted away, and
// why it ended.
func (l *APILoad) follow(ctx context.Context, w watch.Interface, rv string) (string, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return rv, false, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, false, errors.New("the watch ended: its channel closed")
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				return rv, apierrors.IsResourceExpired(err) || apierrors.IsGone(err), fmt.Errorf("the watch delivered an error: %w", err)
			}
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				continue
			}
			l.n.event()
			rv = cm.ResourceVersion
			l.saw(cm)
		}
	}
}

// missed lists the acknowledged writes the watch has not delivered.
func (l *APILoad) missed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for name, rv := range l.acked {
		if l.seen[name] < rv {
			out = append(out, fmt.Sprintf("%s at resourceVersion %d (the watch's newest: %d)", name, rv, l.seen[name]))
		}
	}
	return out
}

// Stats is what the load has done so far; it keeps running.
func (l *APILoad) Stats() Stats { return l.n.stats() }

// Stop ends the writers, waits up to WatchCatchUp for the watch to
// deliver every acknowledged write (each one it never delivers is a
// failure), ends the watch and returns the counts. Calling it again
// returns the same counts.
func (l *APILoad) Stop() Stats {
	l.stop.Do(func() {
		l.cancel()
		l.wg.Wait()
		deadline := time.Now().Add(WatchCatchUp)
		for len(l.missed()) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		l.watchCancel()
		<-l.watchDone
		for _, m := range l.missed() {
			l.n.failure(Failure{At: time.Now(), Op: "watch", Err: fmt.Errorf("the watch never delivered the write of ConfigMap %s", m)})
		}
		l.final = l.n.stats()
	})
	return l.final
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
