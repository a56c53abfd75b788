package request

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// waiter follows the status of one request.
type waiter struct {
	o      Options
	res    *Result
	proven map[string]bool
	last   *v1alpha1.EtcdCluster
}

// wait watches the EtcdCluster until every requested certificate is
// renewed and in effect, or the timeout. A watch the apiserver ends (its
// timeout, a restart) is opened again from a fresh read, which also
// catches what changed in between.
func wait(ctx context.Context, o Options, key client.ObjectKey, res *Result) error {
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	w := &waiter{o: o, res: res, proven: map[string]bool{}}
	for {
		var ec v1alpha1.EtcdCluster
		err := o.Client.Get(wctx, key, &ec)
		if err == nil {
			if w.see(&ec) {
				return nil
			}
			err = followUntil(wctx, w.o.Client, key, ec.ResourceVersion, w.see)
			if err == nil {
				return nil
			}
		}
		switch {
		case errors.Is(err, errGone):
			return fmt.Errorf("EtcdCluster %s/%s: %w", key.Namespace, key.Name, err)
		case ctx.Err() != nil:
			return fmt.Errorf("waiting for the renewal on EtcdCluster %s/%s: %w", key.Namespace, key.Name, context.Cause(ctx))
		case wctx.Err() != nil:
			return w.timeout()
		}
		// The apiserver is away or the watch broke: read again after a
		// pause, as long as the timeout allows.
		select {
		case <-wctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// see reports every certificate newly proven in effect in ec's status
// and says whether all are.
func (w *waiter) see(ec *v1alpha1.EtcdCluster) bool {
	w.last = ec
	n := len(w.res.Requested)
	for _, id := range w.res.Requested {
		if w.proven[id] {
			continue
		}
		c, ok := renewed(ec, id, w.res.At)
		if !ok {
			continue
		}
		w.proven[id] = true
		w.res.InEffect = append(w.res.InEffect, id)
		i := len(w.res.InEffect)
		// Seen, not renewed: RenewedAt is the agent's clock, in whole
		// seconds; this is ours.
		took := w.o.Now().Sub(w.res.sent)
		by := c.ProvenBy
		if by == "" {
			by = "status"
		}
		w.o.Log.Step(runner.StepProve, id).Count(i, n).Serial(c.Serial).Took(took).Done("[%d/%d] %s: renewed and in effect: serial %s, proven by %s (seen %d ms after the request)",
			i, n, id, pki.ShortSerial(c.Serial), by, took.Milliseconds())
	}
	if len(w.res.InEffect) == n {
		w.o.Log.Step(runner.StepProve, w.o.Cluster).Count(n, n).Done("all %d requested certificates of EtcdCluster %s/%s are renewed and in effect", n, w.o.Namespace, w.o.Cluster)
		return true
	}
	return false
}

// timeout is the error naming what is still missing, as the last status
// read showed it.
func (w *waiter) timeout() error {
	e := &TimeoutError{Timeout: w.o.Timeout}
	for _, id := range w.res.Requested {
		if w.proven[id] {
			continue
		}
		if w.last == nil {
			e.Missing = append(e.Missing, id+": no status read")
			continue
		}
		e.Missing = append(e.Missing, why(w.last, id, w.res.At))
	}
	return e
}
