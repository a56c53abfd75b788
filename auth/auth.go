package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// Options shape one auth apply.
type Options struct {
	// DryRun prints the changes, one a line, and makes none.
	DryRun bool
	// Out receives the changes and the proofs, one a line.
	Out io.Writer
}

// Result is what a run changed and proved.
type Result struct {
	// Changes are the changes made (or, for a dry run, to make).
	Changes []etcdauth.Change
	// Enabled says whether auth is on at the end (for a dry run: would
	// be).
	Enabled bool
	// Proofs are the certificates tried on the wire (auth on only).
	Proofs []etcdauth.Proof
}

// ProofError is a certificate that did not behave as the spec says after
// the apply: the grants are in place, the proof is what failed.
type ProofError struct{ Failed []etcdauth.Proof }

func (e *ProofError) Error() string {
	return fmt.Sprintf("%d certificate(s) do not behave as the spec grants (first: %s); check the cluster with etcdpki verify --spec and run etcdpki auth apply again", len(e.Failed), e.Failed[0])
}

// ExitCode makes the CLI exit 1: a failed check.
func (e *ProofError) ExitCode() int { return 1 }

// Apply moves the cluster's access control to inv's spec; see the
// package comment.
func Apply(ctx context.Context, inv *pki.Inventory, o Options) (*Result, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if _, err := os.Stat(inv.Spec.PKIDir); errors.Is(err, fs.ErrNotExist) {
		return nil, input.Errorf("there is no PKI at %s: run etcdpki init first", inv.Spec.PKIDir)
	}
	for _, t := range inv.Targets {
		if t.CommonName == cluster.RootUser {
			return nil, input.Errorf("%s has common name %q, etcd's superuser: with auth on it would hold every key; rename it in the spec", t.ID, cluster.RootUser)
		}
	}
	if !o.DryRun {
		l, err := runner.Lock(inv.Spec.PKIDir)
		if err != nil {
			return nil, err
		}
		defer l.Release()
	}
	warnCompaction(inv, o.Out)
	etcd := runner.New(inv, runner.Config{DryRun: o.DryRun}, nil).Etcd
	h, err := etcd.Health(ctx)
	if err != nil {
		return nil, err
	}
	if err := runner.HealthyOrError(inv.Spec, h, "refusing to change etcd's users and roles"); err != nil {
		return nil, err
	}
	cli, err := etcd.AdminClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	live, err := etcdauth.Live(ctx, cli)
	if err != nil {
		return nil, fmt.Errorf("auth apply: %w (the root client minted from the CA was refused or etcd did not answer; nothing was changed)", err)
	}
	res := &Result{Changes: etcdauth.Plan(live, inv.Spec), Enabled: live.Enabled}
	for _, c := range res.Changes {
		if c.Op == etcdauth.EnableAuth || c.Op == etcdauth.DisableAuth {
			res.Enabled = c.Op == etcdauth.EnableAuth
		}
	}
	if o.DryRun {
		return res, dryRun(o.Out, res)
	}
	for i, c := range res.Changes {
		if err := etcdauth.Apply(ctx, cli, res.Changes[i:i+1]); err != nil {
			res.Changes = res.Changes[:i]
			return res, fmt.Errorf("auth apply: %w (%d of %d changes made, each safe to stop after; run etcdpki auth apply again)", err, i, len(res.Changes))
		}
		fmt.Fprintf(o.Out, "changed: %s\n", c)
	}
	if len(res.Changes) == 0 {
		fmt.Fprintln(o.Out, "no change: etcd's users and roles are the spec's")
	}
	return res, prove(ctx, inv, o.Out, res)
}

// warnCompaction names each member whose etcd.conf.yml in the PKI lacks
// auto-compaction while the spec turns auth on: kube-apiserver cannot
// compact etcd then (KV.Compact is root's), so etcd must, and a config
// written before auth was on does not say so.
func warnCompaction(inv *pki.Inventory, out io.Writer) {
	if !inv.Spec.Auth.Enabled {
		return
	}
	for _, n := range inv.Spec.Nodes {
		c, err := pki.ReadNodeConfig(inv.Paths.NodeConfig(n.Name))
		if err == nil && c.AutoCompactionMode == "" {
			fmt.Fprintf(out, "warning: %s's etcd.conf.yml has no auto-compaction: with auth on kube-apiserver cannot compact etcd (KV.Compact is root's); run etcdpki init to rewrite the configs and apiserver flags (%s), then etcdpki rotate to restart the members with them\n", n.Name, pki.APIServerCompactionOff)
		}
	}
}

// dryRun prints the plan, one change a line.
func dryRun(out io.Writer, res *Result) error {
	for _, c := range res.Changes {
		fmt.Fprintf(out, "would %s\n", c)
	}
	if len(res.Changes) == 0 {
		fmt.Fprintln(out, "no change: etcd's users and roles are the spec's")
	}
	fmt.Fprintln(out, "dry run: nothing changed")
	return nil
}

// prove tries every certificate on the wire once auth is on, one line a
// certificate.
func prove(ctx context.Context, inv *pki.Inventory, out io.Writer, res *Result) error {
	if !res.Enabled {
		fmt.Fprintln(out, "auth is off: every certificate the CA signs reads and writes every key (auth.enabled: true in the spec turns it on)")
		return nil
	}
	res.Proofs = etcdauth.Prove(ctx, inv, etcdauth.Desired(inv.Spec))
	var failed []etcdauth.Proof
	for _, p := range res.Proofs {
		mark := "ok"
		switch {
		case p.Skipped:
			mark = "skipped"
		case p.Err != nil:
			mark, failed = "FAILED", append(failed, p)
		}
		fmt.Fprintf(out, "proof %s: %s\n", mark, p)
	}
	if len(failed) > 0 {
		return &ProofError{Failed: failed}
	}
	return nil
}
