package rotate

import (
	"io"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/runner"
)

// RestartMode says whether members are restarted after their files change.
type RestartMode string

// Restart modes.
const (
	// RestartAuto, the default, restarts a member only when something
	// etcd reads only at start changed (the bytes of ca.crt in its
	// bundle, its etcd.conf.yml) or it runs an etcd older than 3.2;
	// renewed leaves are proven in effect by fresh handshakes instead.
	RestartAuto RestartMode = "auto"
	// RestartAlways rolls every member whose certificates changed. It is
	// the choice after a key compromise: connections already open, which
	// were authenticated with the old key, are only cut by a restart.
	RestartAlways RestartMode = "always"
	// RestartNever restarts nothing and proves the renewed leaves in
	// effect (with NoVerify, it swaps the files only).
	RestartNever RestartMode = "never"
)

// Options control a rotation; the cluster is the inventory Run is
// handed. The zero value of every field is a sensible default.
type Options struct {
	// RenewBefore overrides the spec's renew-before threshold when > 0.
	RenewBefore time.Duration
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Restart is RestartAuto ("" means auto), RestartAlways or
	// RestartNever.
	Restart RestartMode
	// NoVerify skips the proof that renewed certificates are in effect,
	// for hosts the rotating machine cannot reach. Only with RestartNever:
	// the other modes must see the new certificates served.
	NoVerify bool
	// Out receives the timestamped progress lines.
	Out io.Writer
	// Reporter, when set, receives the progress as events instead of Out
	// (runner.Event; cmd passes runner.TextReporter).
	Reporter runner.Reporter
	// MetricsFile, when set, is a Prometheus textfile written after
	// every run.
	MetricsFile string
	// HandOffSettle is how long to leave a new leader alone before the
	// next member goes down; 0 means DefaultHandOffSettle, < 0 none.
	HandOffSettle time.Duration
	// MemberTimeout and CommandTimeout; 0 means the defaults.
	MemberTimeout  time.Duration
	CommandTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// Recover is --recover: for a cluster whose certificates (or CA)
	// expired and that has no quorum. It renews what is expired or
	// invalid (re-issuing everything from a new CA when the CA expired),
	// deploys to every node and restarts every member at once (see
	// recover.go). It refuses a cluster that has a quorum.
	Recover bool
	// RecoverCommand is the exact command line an operator runs to
	// recover this cluster, quoted in the error that sends them there;
	// "" means "etcdpki rotate --recover".
	RecoverCommand string
}

func (o *Options) defaults() error {
	c := o.Config()
	c.Defaults()
	o.Out, o.Now, o.Reporter = c.Out, c.Now, c.Reporter
	o.MemberTimeout, o.HandOffSettle, o.CommandTimeout = c.MemberTimeout, c.HandOffSettle, c.CommandTimeout
	switch o.Restart {
	case "":
		o.Restart = RestartAuto
	case RestartAuto, RestartAlways, RestartNever:
	default:
		return input.Errorf("--restart %q: use auto, always or never", o.Restart)
	}
	if o.Recover && o.Restart != RestartAuto {
		return input.Errorf("--recover restarts every member at once: --restart=%s does not apply to it", o.Restart)
	}
	if o.RecoverCommand == "" {
		o.RecoverCommand = "etcdpki rotate --recover"
	}
	if o.NoVerify && o.Restart != RestartNever {
		return input.Errorf("--no-verify only goes with --restart=never: --restart=%s must see the new certificates in effect", o.Restart)
	}
	return nil
}

// Config is the runner's share of o: what every operation sets alike.
func (o *Options) Config() runner.Config {
	return runner.Config{DryRun: o.DryRun, Out: o.Out, Reporter: o.Reporter, Now: o.Now,
		MemberTimeout: o.MemberTimeout, HandOffSettle: o.HandOffSettle, CommandTimeout: o.CommandTimeout}
}

// Result says what a run did and how long each part took.
type Result struct {
	Plan    *Plan
	Renewed []issue.Renewed
	// Tally is the restarts, proofs and hand-offs the run made.
	runner.Tally
	// Took is the whole run.
	Took time.Duration
}
