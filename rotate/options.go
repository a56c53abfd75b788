package rotate

import (
	"fmt"
	"io"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
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

// Defaults for the timeouts, chosen for a real host rather than a laptop.
const (
	// DefaultMemberTimeout bounds the wait for a restarted member: etcd
	// may replay a large WAL, but two minutes without serving means
	// something is wrong, and the other members must stay untouched.
	DefaultMemberTimeout = 2 * time.Minute
	// DefaultHandOffSettle is the pause between a leadership transfer
	// and stopping the next member. Measured on loopback under client
	// load: stopping a member right after the transfer stalled client
	// requests for 150-750 ms in most runs (the new leader's commits
	// waited on something etcd does not expose); 300 ms still showed
	// 130-230 ms stalls, 500 ms none above 15 ms. Against real restarts
	// of several seconds each, half a second is noise.
	DefaultHandOffSettle = 500 * time.Millisecond
	// DefaultCommandTimeout bounds one deploy or restart command: an ssh
	// to a host that went away must not hold the lock forever.
	DefaultCommandTimeout = 5 * time.Minute
)

// Options control a rotation. The zero value of every field but Spec is
// a sensible default.
type Options struct {
	Spec *cluster.Spec
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
	if err := c.Defaults(); err != nil {
		return err
	}
	o.Spec, o.Out, o.Now = c.Spec, c.Out, c.Now
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
func (o *Options) Config() Config {
	return Config{Spec: o.Spec, DryRun: o.DryRun, Out: o.Out, Now: o.Now,
		MemberTimeout: o.MemberTimeout, HandOffSettle: o.HandOffSettle, CommandTimeout: o.CommandTimeout}
}

// Result says what a run did and how long each part took.
type Result struct {
	Plan    *Plan
	Renewed []issue.Renewed
	// Tally is the restarts, proofs and hand-offs the run made.
	Tally
	// Took is the whole run.
	Took time.Duration
}

// MemberResult is one restarted member.
type MemberResult struct {
	Name string
	// Restart is from running its restart command until it passed every
	// health gate: the floor a rotation cannot beat.
	Restart      time.Duration
	ServerSerial string
	PeerSerial   string
}

// HandOff is one leadership transfer: MoveLeader, the wait until every
// member follows the new leader, and the settle time after it.
type HandOff struct {
	From, To string
	Start    time.Time
	// Took runs from MoveLeader until every member follows the new
	// leader; it excludes the settle pause that follows.
	Took time.Duration
}

// InterruptedError is a run stopped by its context (SIGTERM) between two
// steps. Nothing is half done: the next run resumes.
type InterruptedError struct{ Step string }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted before %s; the next run resumes from the journal", e.Step)
}

// ExitCode is 1: the rotation did not finish.
func (e *InterruptedError) ExitCode() int { return 1 }

// MemberError is a member that did not come back as it should.
type MemberError struct {
	Member string
	Err    error
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("member %s: %v; stopped, the other members are untouched", e.Member, e.Err)
}

func (e *MemberError) Unwrap() error { return e.Err }

// ExitCode is 1: a failed operation.
func (e *MemberError) ExitCode() int { return 1 }
