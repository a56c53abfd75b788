// Package request is `etcdpki rotate --kubeconfig`: a renewal asked of
// the agents through the EtcdCluster, the way `kubectl rollout restart`
// asks a Deployment's pods. It stamps the request (a time and the
// targets, as annotations) on the EtcdCluster, then watches the
// EtcdCluster until its status shows every requested certificate renewed
// since the request and proven in effect, printing one line per
// certificate as it is.
//
// It is its own operation, not part of package rotate: rotate works on a
// PKI directory and is the break-glass tool when no apiserver runs, so it
// must not depend on the Kubernetes client; this one changes nothing but
// two annotations and reads only the API.
package request

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// DefaultTimeout bounds the wait: an agent renews within seconds of
// seeing the request (its key, the CSR, the switch, the proof), and one
// that is down or cut off from the apiserver does not come back by
// itself; ten minutes leaves room for agents retrying with backoff.
const DefaultTimeout = 10 * time.Minute

// StepRequest is the event of the stamped request.
const StepRequest = "request"

// Options say which EtcdCluster and what to renew.
type Options struct {
	// Client reads and patches the EtcdCluster and watches it.
	Client client.WithWatch
	// Namespace and Cluster name the EtcdCluster.
	Namespace, Cluster string
	// Targets are names as pki.Select takes them (IDs, owners, kind
	// names); nil asks for every certificate.
	Targets []string
	// Timeout bounds the wait after the request; DefaultTimeout if 0.
	Timeout time.Duration
	// Expand is pki.New: cmd's, as every operation takes its inventory.
	Expand func(*cluster.Spec) *pki.Inventory
	// Log gets the progress events.
	Log *runner.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Result is what the run requested and saw.
type Result struct {
	// At is the request's time, as stamped.
	At time.Time
	// Requested lists the requested certificates' IDs, sorted.
	Requested []string
	// InEffect lists those proven in effect, in the order they were.
	InEffect []string
	// sent is when the request was made, by this clock, to the
	// fraction: the printed durations count from it.
	sent time.Time
}

// TimeoutError is the wait ending before every certificate was in effect.
type TimeoutError struct {
	Timeout time.Duration
	// Missing says, per certificate not in effect, what status showed.
	Missing []string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("not every certificate is in effect after %s: %s", e.Timeout, strings.Join(e.Missing, "; "))
}

// Run stamps the request and waits for it. An unknown target or a missing
// EtcdCluster is bad input (exit 2) found before anything is stamped.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	key := client.ObjectKey{Namespace: o.Namespace, Name: o.Cluster}
	var ec v1alpha1.EtcdCluster
	if err := o.Client.Get(ctx, key, &ec); apierrors.IsNotFound(err) {
		return nil, input.Errorf("--cluster %s: EtcdCluster %s/%s does not exist (etcdpki export creates it)", o.Cluster, o.Namespace, o.Cluster)
	} else if err != nil {
		return nil, fmt.Errorf("read EtcdCluster %s/%s: %w", o.Namespace, o.Cluster, err)
	}
	spec, err := ec.Cluster(cluster.Options{})
	if err != nil {
		return nil, err
	}
	all := o.Expand(spec).Targets
	picked := all
	if o.Targets != nil {
		var missing []string
		if picked, missing = pki.Select(all, o.Targets); len(missing) > 0 {
			return nil, input.Errorf("unknown certificate %q: EtcdCluster %s/%s has no such certificate, owner or kind (its certificates: %s)", missing[0], o.Namespace, o.Cluster, strings.Join(pki.IDs(all), ", "))
		}
	}
	if err := settle(ctx, &ec, picked, o.Now); err != nil {
		return nil, err
	}
	// Whole seconds: the status's RenewedAt is a metav1.Time, which the
	// API carries in whole seconds, and an agent's renewal a moment after
	// a request stamped with its fraction would read as before it.
	sent := o.Now()
	res := &Result{At: sent.UTC().Truncate(time.Second), Requested: pki.IDs(picked), sent: sent}
	warnReplaced(&ec, all, o)
	before := ec.DeepCopy()
	ec.Request(res.At, o.Targets)
	if err := o.Client.Patch(ctx, &ec, client.MergeFrom(before)); err != nil {
		return nil, fmt.Errorf("stamp the renewal request on EtcdCluster %s/%s: %w", o.Namespace, o.Cluster, err)
	}
	what := v1alpha1.RenewAll
	if o.Targets != nil {
		what = strings.Join(o.Targets, ",")
	}
	o.Log.Step(StepRequest, o.Cluster).Done("requested the renewal of %d certificates (%s) on EtcdCluster %s/%s at %s; waiting up to %s for the agents",
		len(res.Requested), what, o.Namespace, o.Cluster, res.At.Format(time.RFC3339Nano), o.Timeout)
	return res, wait(ctx, o, key, res)
}

// warnReplaced says which certificates of an earlier request, not yet in
// effect, the new request no longer names: the agents go by the latest
// request only.
func warnReplaced(ec *v1alpha1.EtcdCluster, all []pki.Target, o Options) {
	prev, err := ec.Requested()
	if err != nil || prev.At.IsZero() {
		return
	}
	picked, _ := pki.Select(all, prev.Targets)
	if prev.Targets == nil {
		picked = all
	}
	var now []pki.Target
	if o.Targets == nil {
		now = all
	} else {
		now, _ = pki.Select(all, o.Targets)
	}
	named := map[string]bool{}
	for _, t := range now {
		named[t.ID] = true
	}
	var pending []string
	for _, t := range picked {
		if _, done := renewed(ec, t.ID, prev.At); !done && !named[t.ID] {
			pending = append(pending, t.ID)
		}
	}
	if len(pending) > 0 {
		o.Log.Step(StepRequest, o.Cluster).Warn("the request of %s is replaced before %s were in effect: ask for them again if they are still wanted",
			prev.At.Format(time.RFC3339Nano), strings.Join(pending, ", "))
	}
}

// renewed reports a certificate's status entry, and whether it shows the
// certificate renewed at or after at and proven in effect.
func renewed(ec *v1alpha1.EtcdCluster, id string, at time.Time) (v1alpha1.CertificateStatus, bool) {
	c, ok := ec.Status.Certificate(id)
	return c, ok && c.InEffect && c.RenewedAt != nil && !c.RenewedAt.Time.Before(at)
}

// why says what the status shows of a certificate not yet in effect.
func why(ec *v1alpha1.EtcdCluster, id string, at time.Time) string {
	c, ok := ec.Status.Certificate(id)
	var s string
	switch {
	case !ok:
		s = "no status reported"
	case c.RenewedAt == nil || c.RenewedAt.Time.Before(at):
		s = "not renewed since the request"
		if c.RenewedAt != nil {
			s += " (last renewed " + c.RenewedAt.UTC().Format(time.RFC3339) + ")"
		}
	default:
		s = "renewed " + c.RenewedAt.UTC().Format(time.RFC3339) + " but not proven in effect"
	}
	if ok && c.Message != "" {
		s += ": " + c.Message
	}
	return id + ": " + s
}

// errGone ends the wait when the EtcdCluster is deleted under it.
var errGone = errors.New("the EtcdCluster was deleted while waiting")

// maxSettle bounds settle's wait: a RenewedAt further ahead than this is
// an agent's clock ahead of this host's, not a renewal a moment ago.
const maxSettle = 3 * time.Second

// settle waits until this host's clock is past every picked
// certificate's RenewedAt. Agents round RenewedAt up to the whole second,
// and the request is stamped in whole seconds: a renewal finished in the
// same second as the request, or in the second before, would otherwise
// read as the answer to it, and rotate would report a renewal that never
// happened. A RenewedAt more than maxSettle ahead is a clock skew, which
// is an error: no stamp this host can make is safe.
func settle(ctx context.Context, ec *v1alpha1.EtcdCluster, picked []pki.Target, now func() time.Time) error {
	d, who, latest := settleWait(ec, picked, now())
	if d <= 0 {
		return nil
	}
	if d > maxSettle {
		return fmt.Errorf("EtcdCluster %s/%s: %s was renewed at %s by an agent's clock, %s ahead of this host's: the clocks disagree (check NTP on the agents' hosts and here), and a request stamped now would read as already answered",
			ec.Namespace, ec.Name, who, latest.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// settleWait is how long until now is a second past the latest RenewedAt
// among the picked certificates, which certificate that is, and when.
func settleWait(ec *v1alpha1.EtcdCluster, picked []pki.Target, now time.Time) (time.Duration, string, time.Time) {
	var latest time.Time
	var who string
	for _, t := range picked {
		if c, ok := ec.Status.Certificate(t.ID); ok && c.RenewedAt != nil && c.RenewedAt.Time.After(latest) {
			latest, who = c.RenewedAt.Time, t.ID
		}
	}
	if latest.IsZero() {
		return 0, "", latest
	}
	return latest.Add(time.Second).Sub(now), who, latest
}
