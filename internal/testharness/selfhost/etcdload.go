package selfhost

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// RequestTimeout bounds one request of either load: the apiserver's own
// etcd request timeout, so "failed" means what it would mean to
// Kubernetes.
const RequestTimeout = 5 * time.Second

// LoadWorkers is how many goroutines drive each load, one request in
// flight each; LoadPace is the least time between one worker's rounds.
// Together about 150 etcd rounds and 40 apiserver rounds a second: steady
// pressure without starving a small CI machine.
const (
	LoadWorkers = 3
	LoadPace    = 20 * time.Millisecond
)

// EtcdLoad writes and reads the managed cluster directly, as the
// apiserver does: each worker puts a key of its own and reads it back
// with a linearizable get, which must return the value just written.
type EtcdLoad struct {
	cli    *clientv3.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
	n      *counter
	stop   sync.Once
	final  Stats
}

var loadRuns atomic.Int64

// StartEtcdLoad starts a load on every member's endpoint with the
// apiserver's TLS (etcdtest reads its pair again at every handshake, as
// the apiserver does, so the load follows a renewal of it in place).
func (e *Env) StartEtcdLoad(t testing.TB) *EtcdLoad {
	t.Helper()
	return StartEtcdLoad(t, e.Etcd.Endpoints(), e.Etcd.APIServerTLS())
}

// StartEtcdLoad starts a load on endpoints with cfg; Stop ends it (and
// the test's end does, if no one did).
func StartEtcdLoad(t testing.TB, endpoints []string, cfg *tls.Config) *EtcdLoad {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: cfg, DialTimeout: RequestTimeout, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("selfhost: etcd load client: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &EtcdLoad{cli: cli, cancel: cancel, n: newCounter("etcd")}
	// Under kube-apiserver's prefix: the load uses its certificate, whose
	// etcd user holds /registry/ alone when auth is on.
	prefix := fmt.Sprintf("/registry/etcdpki-selfhost-load/%d/", loadRuns.Add(1))
	for w := range LoadWorkers {
		l.wg.Go(func() { l.work(ctx, fmt.Sprintf("%s%d/", prefix, w)) })
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

// work is one worker: a bounded set of keys, so that minutes of load do
// not grow the database without end.
func (l *EtcdLoad) work(ctx context.Context, prefix string) {
	tick := time.NewTicker(LoadPace)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key, val := fmt.Sprintf("%s%d", prefix, i%32), fmt.Sprint(i)
		if !l.do("put", func(rctx context.Context) error {
			_, err := l.cli.Put(rctx, key, val)
			return err
		}) {
			continue
		}
		l.do("get", func(rctx context.Context) error {
			resp, err := l.cli.Get(rctx, key) // linearizable by default
			if err != nil {
				return err
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != val {
				return fmt.Errorf("linearizable get of %s after its put of %q returned %v", key, val, resp.Kvs)
			}
			return nil
		})
	}
}

func (l *EtcdLoad) do(op string, req func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	t0 := time.Now()
	err := req(ctx)
	l.n.record(op, t0, err)
	return err == nil
}

// Stats is what the load has done so far; it keeps running.
func (l *EtcdLoad) Stats() Stats { return l.n.stats() }

// Stop ends the load, waits for the requests in flight and returns the
// counts. Calling it again returns the same counts.
func (l *EtcdLoad) Stop() Stats {
	l.stop.Do(func() {
		l.cancel()
		l.wg.Wait()
		l.final = l.n.stats()
		l.cli.Close()
	})
	return l.final
}
