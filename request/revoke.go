package request

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Steps of certs revoke --kubeconfig, as its lines name them.
const (
	StepRevoke   = "revoke"
	StepRenewed  = "renewed"
	StepEnforced = "enforced"
)

// RevokeOptions say which EtcdCluster and what to revoke: Targets (as
// pki.Select takes them), each resolved to the serial its status shows in
// use, or Serials (hex); one or the other.
type RevokeOptions struct {
	Client             client.WithWatch
	Namespace, Cluster string
	Targets, Serials   []string
	// Reason is an RFC 5280 reason name (pki.Reasons); "" is unspecified.
	Reason string
	// Timeout bounds the wait; DefaultTimeout if 0.
	Timeout time.Duration
	Expand  func(*cluster.Spec) *pki.Inventory
	Log     *runner.Logger
	Now     func() time.Time
}

// RevokeResult is what was asked and seen.
type RevokeResult struct {
	// Serials are the revoked serials (canonical hex), in request order.
	Serials []string
	// Added are those this run added to spec.revocations (the rest were
	// there already: the run only waited).
	Added []string
	// Enforced are those seen enforced, in the order they were.
	Enforced []string
	sent     time.Time
}

// Revoke checks the request against the EtcdCluster (bad input, exit 2,
// with nothing changed: an unknown cluster or target, a target with no
// serial in status, a malformed serial, the CA's serial, an unknown
// reason), adds the entries to spec.revocations and waits until the
// status shows each enforced: every member refusing it on its client and
// peer port.
func Revoke(ctx context.Context, o RevokeOptions) (*RevokeResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Reason == "" {
		o.Reason = "unspecified"
	}
	if _, ok := pki.Reasons[o.Reason]; !ok {
		return nil, input.Errorf("certs revoke: --reason %q: use one of %s", o.Reason, pki.ReasonNames())
	}
	if (len(o.Targets) == 0) == (len(o.Serials) == 0) {
		return nil, input.Errorf("certs revoke: name the certificates to revoke (TARGET) or give --serial, one or the other")
	}
	key := client.ObjectKey{Namespace: o.Namespace, Name: o.Cluster}
	var ec v1alpha1.EtcdCluster
	if err := o.Client.Get(ctx, key, &ec); apierrors.IsNotFound(err) {
		return nil, input.Errorf("--cluster %s: EtcdCluster %s/%s does not exist (etcdpki export creates it)", o.Cluster, o.Namespace, o.Cluster)
	} else if err != nil {
		return nil, fmt.Errorf("read EtcdCluster %s/%s: %w", o.Namespace, o.Cluster, err)
	}
	want, err := revocations(ctx, o, &ec)
	if err != nil {
		return nil, err
	}
	res := &RevokeResult{sent: o.Now()}
	for _, w := range want {
		res.Serials = append(res.Serials, w.Serial)
	}
	if err := addRevocations(ctx, o, key, want, res); err != nil {
		return nil, err
	}
	return res, waitEnforced(ctx, o, key, want, res)
}

// revocations resolves the request into spec entries, checking each.
func revocations(ctx context.Context, o RevokeOptions, ec *v1alpha1.EtcdCluster) ([]v1alpha1.RevocationSpec, error) {
	spec, err := ec.Cluster(cluster.Options{})
	if err != nil {
		return nil, err
	}
	at := metav1.NewTime(o.Now().UTC().Truncate(time.Second))
	var out []v1alpha1.RevocationSpec
	if len(o.Targets) > 0 {
		all := o.Expand(spec).Targets
		picked, missing := pki.Select(all, o.Targets)
		if len(missing) > 0 {
			return nil, input.Errorf("certs revoke: unknown certificate %q: EtcdCluster %s/%s has no such certificate, owner or kind (its certificates: %s)", missing[0], o.Namespace, o.Cluster, strings.Join(pki.IDs(all), ", "))
		}
		for _, t := range picked {
			c, ok := ec.Status.Certificate(t.ID)
			if _, s, valid := pki.ParseSerial(c.Serial); ok && valid {
				out = append(out, v1alpha1.RevocationSpec{Serial: s, Reason: o.Reason, Target: t.ID, NotAfter: c.NotAfter, RequestedAt: &at})
				continue
			}
			return nil, input.Errorf("certs revoke: %s has no serial in the status of EtcdCluster %s/%s: its agent has not reported it (is it running?); give --serial if you know it", t.ID, o.Namespace, o.Cluster)
		}
		return out, nil
	}
	caSerial, err := caSerial(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, raw := range o.Serials {
		n, s, ok := pki.ParseSerial(raw)
		if !ok {
			return nil, input.Errorf("certs revoke: --serial %q: not a positive hexadecimal serial", raw)
		}
		if caSerial != nil && n.Cmp(caSerial.SerialNumber) == 0 {
			return nil, input.Errorf("certs revoke: --serial %s is the CA's own serial: a CA leaves the trust through ca rotate, not the CRL", s)
		}
		e := v1alpha1.RevocationSpec{Serial: s, Reason: o.Reason, RequestedAt: &at}
		for _, c := range ec.Status.Certificates {
			if _, cs, ok := pki.ParseSerial(c.Serial); ok && cs == s {
				e.Target, e.NotAfter = c.ID, c.NotAfter // in use: its agent renews it first
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// caSerial is the CA certificate of the trust ConfigMap, which the
// revoked serial must not be.
func caSerial(ctx context.Context, o RevokeOptions) (*x509.Certificate, error) {
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: o.Namespace, Name: v1alpha1.TrustConfigMapName(o.Cluster)}
	if err := o.Client.Get(ctx, key, &cm); err != nil {
		return nil, fmt.Errorf("read ConfigMap %s (the CA, to refuse its own serial): %w", key, err)
	}
	c, err := ca.ParseCert([]byte(cm.Data[v1alpha1.TrustCA]))
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s: %s: %w", key, v1alpha1.TrustCA, err)
	}
	return c, nil
}

// addRevocations appends the entries spec.revocations lacks, with a lock
// on that list: it is replaced whole, and another writer's entry (a member
// removal's) must never be lost, while the status writes beside it must
// not fail the request.
func addRevocations(ctx context.Context, o RevokeOptions, key client.ObjectKey, want []v1alpha1.RevocationSpec, res *RevokeResult) error {
	var added []v1alpha1.RevocationSpec
	err := kube.UpdateField(ctx, o.Client, o.Client, key, []string{"spec", "revocations"}, func(ec *v1alpha1.EtcdCluster) (any, bool, error) {
		added = nil
		list := ec.Spec.Revocations
		for _, w := range want {
			if !slices.ContainsFunc(list, func(e v1alpha1.RevocationSpec) bool { _, s, _ := pki.ParseSerial(e.Serial); return s == w.Serial }) {
				list = append(list, w)
				added = append(added, w)
			}
		}
		return list, len(added) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("add to spec.revocations of EtcdCluster %s: %w", key, err)
	}
	for _, w := range want {
		what := w.Serial
		if w.Target != "" {
			what = w.Target + " (serial " + pki.ShortSerial(w.Serial) + ")"
		}
		if slices.ContainsFunc(added, func(a v1alpha1.RevocationSpec) bool { return a.Serial == w.Serial }) {
			res.Added = append(res.Added, w.Serial)
			o.Log.Step(StepRevoke, what).Serial(w.Serial).Done("%s: added to spec.revocations of EtcdCluster %s (reason %s); waiting up to %s for the controller", what, key, w.Reason, o.Timeout)
		} else {
			o.Log.Step(StepRevoke, what).Serial(w.Serial).Info("%s: already in spec.revocations of EtcdCluster %s; waiting up to %s for the controller", what, key, o.Timeout)
		}
	}
	return nil
}
