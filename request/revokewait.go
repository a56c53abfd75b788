package request

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/pki"
)

// RevokeTimeoutError is the wait ending before every revocation was
// enforced.
type RevokeTimeoutError struct {
	Timeout time.Duration
	// Missing says, per serial not enforced, what status showed.
	Missing []string
}

func (e *RevokeTimeoutError) Error() string {
	return fmt.Sprintf("not every revocation is enforced after %s: %s", e.Timeout, strings.Join(e.Missing, "; "))
}

// revokeWaiter follows the status of a revocation request.
type revokeWaiter struct {
	o        RevokeOptions
	want     []v1alpha1.RevocationSpec
	res      *RevokeResult
	renewed  map[string]bool
	enforced map[string]bool
	last     *v1alpha1.EtcdCluster
}

// waitEnforced watches the EtcdCluster until every serial's status entry
// is enforced (or expired), printing a line when a target's certificate
// in use was renewed away and when a serial is enforced.
func waitEnforced(ctx context.Context, o RevokeOptions, key client.ObjectKey, want []v1alpha1.RevocationSpec, res *RevokeResult) error {
	w := &revokeWaiter{o: o, want: want, res: res, renewed: map[string]bool{}, enforced: map[string]bool{}}
	err := watchUntil(ctx, o.Client, key, o.Timeout, w.see)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return w.timeout()
	}
	return fmt.Errorf("waiting for the revocation on EtcdCluster %s: %w", key, err)
}

func (w *revokeWaiter) see(ec *v1alpha1.EtcdCluster) bool {
	w.last = ec
	for _, e := range w.want {
		if e.Target != "" && !w.renewed[e.Serial] {
			if c, ok := ec.Status.Certificate(e.Target); ok && c.InEffect && c.Serial != e.Serial {
				w.renewed[e.Serial] = true
				w.o.Log.Step(StepRenewed, e.Target).Serial(c.Serial).Done("%s: renewed by its agent and in effect: serial %s -> %s", e.Target, pki.ShortSerial(e.Serial), pki.ShortSerial(c.Serial))
			}
		}
		st, ok := ec.Status.Revocation(e.Serial)
		if w.enforced[e.Serial] || !ok || !st.Enforced && !st.Expired {
			continue
		}
		w.enforced[e.Serial] = true
		w.res.Enforced = append(w.res.Enforced, e.Serial)
		took := w.o.Now().Sub(w.res.sent)
		w.o.Log.Step(StepEnforced, e.Serial).Count(len(w.res.Enforced), len(w.want)).Serial(e.Serial).Took(took).Done("[%d/%d] serial %s: enforced: %s (seen %d ms after the request)",
			len(w.res.Enforced), len(w.want), pki.ShortSerial(e.Serial), st.Message, took.Milliseconds())
	}
	return len(w.res.Enforced) == len(w.want)
}

func (w *revokeWaiter) timeout() error {
	e := &RevokeTimeoutError{Timeout: w.o.Timeout}
	for _, r := range w.want {
		if w.enforced[r.Serial] {
			continue
		}
		msg := "no status reported"
		if w.last != nil {
			if st, ok := w.last.Status.Revocation(r.Serial); ok && st.Message != "" {
				msg = st.Message
			}
		}
		e.Missing = append(e.Missing, r.Serial+": "+msg)
	}
	return e
}

// watchUntil reads and watches the EtcdCluster until done says so, the
// object is deleted (errGone) or timeout passes (context.DeadlineExceeded).
// A watch the apiserver ends is opened again from a fresh read.
func watchUntil(ctx context.Context, c client.WithWatch, key client.ObjectKey, timeout time.Duration, done func(*v1alpha1.EtcdCluster) bool) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var ec v1alpha1.EtcdCluster
		err := c.Get(wctx, key, &ec)
		if err == nil {
			if done(&ec) {
				return nil
			}
			err = followUntil(wctx, c, key, ec.ResourceVersion, done)
			if err == nil {
				return nil
			}
		}
		switch {
		case errors.Is(err, errGone):
			return err
		case wctx.Err() != nil:
			return wctx.Err()
		}
		select {
		case <-wctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// followUntil watches the EtcdCluster from resourceVersion rv until done
// says so (nil), or says why the watch ended: a watch error (most often
// "too old resource version") or its end makes the caller read again.
func followUntil(ctx context.Context, c client.WithWatch, key client.ObjectKey, rv string, done func(*v1alpha1.EtcdCluster) bool) error {
	wi, err := c.Watch(ctx, &v1alpha1.EtcdClusterList{}, client.InNamespace(key.Namespace),
		&client.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", key.Name), Raw: &metav1.ListOptions{ResourceVersion: rv}})
	if err != nil {
		return err
	}
	defer wi.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return errors.New("watch ended")
			}
			switch ev.Type {
			case watch.Deleted:
				return errGone
			case watch.Added, watch.Modified:
				if ec, ok := ev.Object.(*v1alpha1.EtcdCluster); ok && done(ec) {
					return nil
				}
			case watch.Error:
				return errors.New("watch error")
			}
		}
	}
}
