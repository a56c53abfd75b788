// Package verify answers the operator's question before a kube-apiserver
// cutover: "if I start the apiserver with these --etcd-* flags, will it
// work, and if not, exactly why?". It checks the TLS material on disk,
// then every endpoint over real TLS (all at once, each within a timeout),
// then what the endpoints must agree on, and reports each check as ok,
// warn or fail with a one-line reason.
//
// It only reads: with a spec it expands the inventory once (input.go)
// and reads the PKI's status, CA and CA-rotation state through package
// pki, never through issue, the writer.
package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// ErrChecksFailed is returned by Run when a check failed (warnings count
// as failures with Strict). It maps to exit code 1.
var ErrChecksFailed = errors.New("verify: checks failed")

// Status is a check's outcome.
type Status string

// Check outcomes. Skip marks a check that could not run because an
// earlier one failed; the failure is reported there.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check is one row of the report.
type Check struct {
	// Name is stable, for scripts: "tls-handshake", "client-cert-expiry"...
	Name string `json:"check"`
	// Target is a file, an endpoint, or "cluster".
	Target string `json:"target"`
	Status Status `json:"status"`
	Reason string `json:"reason"`
	// Kind classifies endpoint failures (see probe.Kind).
	Kind probe.Kind `json:"kind,omitempty"`
}

// Report is everything verify found. The table and -o json render it.
type Report struct {
	Inputs  *Inputs        `json:"inputs"`
	Checks  []Check        `json:"checks"`
	Cluster *probe.Cluster `json:"cluster,omitempty"`
	// Passed is the verdict: no failure (under Strict, every warning
	// has already become one).
	Passed bool           `json:"passed"`
	Counts map[Status]int `json:"counts"`
	Took   probe.Duration `json:"took"`
	// APIServerFlags and Kubeadm are filled by Run with
	// Options.PrintFlags when the verdict passes.
	APIServerFlags []string `json:"apiserverFlags,omitempty"`
	Kubeadm        string   `json:"kubeadmExternal,omitempty"`
	// Expired says what the spec's expired certificates mean for the
	// cluster now; nil when none has expired or there is no spec.
	Expired *ExpiryState `json:"expired,omitempty"`
}

// Evaluate runs every check and returns the report. inv is the cluster
// spec expanded (nil: only what o names is checked). The error is a
// *input.Error when the options are unusable; failed checks are not
// errors here, see Report.Passed.
func Evaluate(ctx context.Context, inv *pki.Inventory, o Options) (*Report, error) {
	start := time.Now()
	in, err := resolve(inv, o)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	rep := &Report{Inputs: in}
	checks, tlsCfg := localChecks(in, now)
	rep.Checks = append(in.manifestChecks, checks...)
	if tlsCfg == nil {
		for _, ep := range in.Endpoints {
			rep.Checks = append(rep.Checks, Check{Name: CheckTCP, Target: ep, Status: Skip,
				Reason: "not run: the CA, client certificate or key above cannot be used"})
		}
	} else {
		rep.Cluster = probe.Health(ctx, in.Endpoints, tlsCfg, in.timeout)
		for i := range rep.Cluster.Endpoints {
			rep.Checks = append(rep.Checks, endpointChecks(&rep.Cluster.Endpoints[i], now, in.renewBefore)...)
		}
		rep.Checks = append(rep.Checks, clusterChecks(rep.Cluster)...)
	}
	// With the spec's PKI directory at hand, an expired certificate is
	// named with what it means for the cluster now and the command that
	// fixes it (see ExpiredState).
	if in.inv != nil {
		rep.Checks = append(rep.Checks, caKeyCheck(in.inv.Paths))
		rep.Checks = append(rep.Checks, colocatedChecks(in.inv)...)
		rep.Checks = append(rep.Checks, peerChecks(ctx, in.inv, in.timeout, in.renewBefore, now)...)
		if infos, err := pki.List(in.inv, 0, now); err == nil {
			if rep.Expired = ExpiredState(ctx, in.inv, infos, in.timeout); rep.Expired != nil {
				rep.Checks = append(rep.Checks, rep.Expired.check())
			}
		}
	}
	if in.inv != nil {
		rep.Checks = append(rep.Checks, crlChecks(ctx, in.inv, rep.Cluster, in.timeout, now)...)
		rep.Checks = append(rep.Checks, membershipChecks(in.inv, rep.Cluster)...)
		rep.Checks = append(rep.Checks, authChecks(ctx, in.inv, rep.Cluster, tlsCfg, in.timeout)...)
	}
	if o.Strict {
		strict(rep.Checks)
	}
	rep.Counts = map[Status]int{}
	for _, c := range rep.Checks {
		rep.Counts[c.Status]++
	}
	rep.Passed = rep.Counts[Fail] == 0
	rep.Took = probe.Duration(time.Since(start))
	return rep, nil
}

// strict turns every warning into a failure, in place, so the rows, the
// counts and the verdict all say the same thing.
func strict(checks []Check) {
	for i := range checks {
		if checks[i].Status == Warn {
			checks[i].Status = Fail
			checks[i].Reason += " (--strict)"
		}
	}
}

// Run checks, writes the report to w (a table, or JSON with o.JSON), and
// with o.PrintFlags and a passing verdict, the kube-apiserver flags and the
// kubeadm etcd.external block. It returns ErrChecksFailed when the verdict
// is a failure and a *input.Error for bad options.
func Run(ctx context.Context, inv *pki.Inventory, o Options, w io.Writer) (*Report, error) {
	rep, err := Evaluate(ctx, inv, o)
	if err != nil {
		return nil, err
	}
	if o.PrintFlags && rep.Passed {
		if rep.APIServerFlags, rep.Kubeadm, err = rep.apiserverConfig(); err != nil {
			return rep, fmt.Errorf("render kube-apiserver flags: %w", err)
		}
	}
	if o.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return rep, fmt.Errorf("write report: %w", err)
		}
	} else {
		if err := rep.WriteTable(w); err != nil {
			return rep, fmt.Errorf("write report: %w", err)
		}
		switch {
		case o.PrintFlags && !rep.Passed:
			fmt.Fprintln(w, "\nkube-apiserver flags not printed: fix the failures above first")
		case o.PrintFlags:
			if err := rep.WriteFlags(w); err != nil {
				return rep, fmt.Errorf("write flags: %w", err)
			}
		}
	}
	if !rep.Passed {
		return rep, ErrChecksFailed
	}
	return rep, nil
}

// WriteTable renders one row per check and a verdict line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tSTATUS\tREASON")
	for _, c := range r.Checks {
		// One line per row whatever a server put in its error text, or
		// the columns fall apart.
		reason := strings.Join(strings.Fields(c.Reason), " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Target, strings.ToUpper(string(c.Status)), reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "\n%s: %d ok, %d warn, %d fail, %d skipped (%d endpoints in %s)\n",
		verdict, r.Counts[OK], r.Counts[Warn], r.Counts[Fail], r.Counts[Skip], len(r.Inputs.Endpoints), r.Took)
	return err
}

// WriteFlags prints the kube-apiserver flags and the kubeadm block that
// Run filled in (with Options.PrintFlags and a passing verdict).
func (r *Report) WriteFlags(w io.Writer) error {
	fmt.Fprintln(w, "\nkube-apiserver flags:")
	for _, f := range r.APIServerFlags {
		fmt.Fprintln(w, "  "+f)
	}
	fmt.Fprintln(w, "\nkubeadm ClusterConfiguration:")
	_, err := io.WriteString(w, r.Kubeadm)
	return err
}

// apiserverConfig renders the flags that were just verified. From a spec
// alone they are the paths on the apiserver's host, as etcdpki init wrote
// them; from flags or a manifest, the very paths that were checked.
func (r *Report) apiserverConfig() ([]string, string, error) {
	in := r.Inputs
	if in.inv != nil && in.specOnly {
		kubeadm, err := pki.KubeadmExternal(in.inv)
		return pki.APIServerFlags(in.inv), string(kubeadm), err
	}
	ca, crt, key := pathx.Abs(in.CAFile), pathx.Abs(in.CertFile), pathx.Abs(in.KeyFile)
	kubeadm, err := pki.KubeadmExternalFor(in.Endpoints, ca, crt, key)
	return pki.APIServerFlagsFor(in.Endpoints, ca, crt, key), string(kubeadm), err
}
