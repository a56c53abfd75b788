package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Options are `etcdpki agent`'s flags.
type Options struct {
	// Config reaches the apiserver as the agent's identity
	// (etcdpki:node:NODE or etcdpki:client:NAME, in group etcdpki:agents).
	Config *rest.Config
	// Namespace and Cluster name the EtcdCluster.
	Namespace, Cluster string
	// Owner is the node (Node true) or client whose bundle is in Dir.
	Owner string
	Node  bool
	Dir   string
	// MetricsFile, when set, receives the node_exporter textfile after
	// every run and whenever the apiserver comes or goes.
	MetricsFile string
	// Once runs one pass and returns: its error says whether everything
	// due was renewed and proven.
	Once bool
	Log  *runner.Logger
	// Resync bounds the sleep between passes when nothing happens (a due
	// date is computed from the pairs, but the clock may jump); 0 means
	// DefaultResync.
	Resync time.Duration
	// Backoff paces the retries while the apiserver is away or a renewal
	// fails; the zero value means kube.DefaultBackoff.
	Backoff wait.Backoff
	// ReachEvery is how often the agent checks that it reaches the
	// apiserver; 0 means DefaultReachEvery.
	ReachEvery time.Duration
	// Expand is pki.New, handed down by cmd: the EtcdCluster's spec is
	// expanded there, as every command's is.
	Expand func(*cluster.Spec) *pki.Inventory
}

// DefaultResync: a pass every ten minutes reads the EtcdCluster again
// even if no watch event came (a watch can miss nothing, but a clock
// can jump), for a few bytes of traffic per host.
const DefaultResync = 10 * time.Minute

// DefaultReachEvery: the apiserver gauge is at most this stale.
const DefaultReachEvery = 15 * time.Second

// agentRun is one `etcdpki agent` process: its clients, the host lock
// every pass's Agent shares, and what its metrics report.
type agentRun struct {
	o    Options
	cs   kubernetes.Interface
	cl   client.WithWatch
	key  types.NamespacedName
	lock sync.Mutex
	log  *runner.Logger

	mu   sync.Mutex
	host *Host // the last one read, for the trust watcher and metrics
	// rot is the last status.caRotation read: the new CA the trust
	// watcher may add to ca.crt (checkNewCAs).
	rot   *v1alpha1.CARotationStatus
	state RunState
	// known says state.APIServerReachable was measured; reachedOnce that
	// the apiserver answered at least once.
	known, reachedOnce bool
	kick               chan struct{}
}

// Run is `etcdpki agent`: it reads its EtcdCluster, renews what is due
// or requested through CSRs, reports to the status and as Events, and
// installs the trust ConfigMap's CRL; then, unless Once, it watches both
// objects and does it again on every change, at the next due date, and
// after a failure with backoff. It keeps running while the apiserver is
// away, and says so in its log and metrics.
func Run(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	r, err := newRun(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.watchReach(ctx)
	if o.Once {
		_, err := r.pass(ctx)
		r.finish(err)
		return err
	}
	go r.watchCluster(ctx)
	go r.watchTrust(ctx)
	backoff := r.o.Backoff
	for {
		next, err := r.pass(ctx)
		r.finish(err)
		if err != nil {
			next = backoff.Step()
			r.log.Step("retry", r.o.Owner).Info("%s: next try in %s", r.o.Owner, next.Round(time.Second))
		} else {
			backoff = r.o.Backoff
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-time.After(next):
		}
	}
}

func (o *Options) check() error {
	switch {
	case o.Config == nil:
		return input.Errorf("--kubeconfig: required")
	case o.Namespace == "":
		return input.Errorf("--namespace: required")
	case o.Cluster == "":
		return input.Errorf("--cluster: required")
	case o.Owner == "":
		return input.Errorf("--node or --client: one is required")
	case o.Dir == "":
		return input.Errorf("--dir: required")
	case o.Expand == nil:
		return errors.New("agent: Options.Expand is nil (cmd hands down pki.New)")
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.ReachEvery <= 0 {
		o.ReachEvery = DefaultReachEvery
	}
	if o.Backoff == (wait.Backoff{}) {
		o.Backoff = kube.DefaultBackoff
	}
	if o.Log == nil {
		o.Log = runner.NewReportLogger(discard{}, "agent")
	}
	return nil
}

func newRun(o Options) (*agentRun, error) {
	cs, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cl, err := client.NewWithWatch(o.Config, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &agentRun{o: o, cs: cs, cl: cl, log: o.Log, key: types.NamespacedName{Namespace: o.Namespace, Name: o.Cluster},
		kick: make(chan struct{}, 1)}, nil
}

// finish records how a pass ended, in the metrics.
func (r *agentRun) finish(err error) {
	now := time.Now()
	r.mu.Lock()
	r.state.LastRun, r.state.LastRunOK = now, err == nil
	if err == nil {
		r.state.LastSuccess = now
	}
	r.mu.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		r.log.Step("run", r.o.Owner).Err(err).Failed("%s: %v", r.o.Owner, err)
	}
	r.writeMetrics()
}

// writeMetrics writes the textfile, if asked for, with what is known.
func (r *agentRun) writeMetrics() {
	if r.o.MetricsFile == "" {
		return
	}
	r.mu.Lock()
	h, st := r.host, r.state
	r.mu.Unlock()
	name := r.o.Cluster
	if h != nil {
		name = h.Spec.Name
	}
	if err := WriteMetrics(r.o.MetricsFile, name, r.o.Owner, h, st, time.Now()); err != nil {
		r.log.Step("metrics", r.o.Owner).Err(err).Warn("%v", err)
	}
}

// trigger asks the main loop for a pass now; a pass already asked for
// is enough.
func (r *agentRun) trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
