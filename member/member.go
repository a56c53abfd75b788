// member.go is etcdpki member add and member remove: each moves the live
// cluster one member toward the spec, with a journal of steps so that a
// run killed at any step is finished by running the same command again.

package member

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// Options control Add and Remove.
type Options struct {
	// Name is the node to add (in the spec) or remove (gone from it).
	Name string
	// SpecYAML, when set, is written to PKI/etcdpki.yaml by the first
	// write (a PKI made from flags, whose spec lives there).
	SpecYAML []byte
	// Out receives one timestamped line per step.
	Out io.Writer
	// Reporter, when set, receives the progress as events instead of Out
	// (runner.Event; cmd passes runner.TextReporter).
	Reporter runner.Reporter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DryRun prints every step against the live cluster and changes
	// nothing.
	DryRun bool
	// MemberTimeout bounds the learner's catch-up and promotion; 0 means
	// DefaultMemberTimeout.
	MemberTimeout time.Duration
	// CommandTimeout bounds one template command; 0 means the default.
	CommandTimeout time.Duration
	// crashAt, in tests, ends the run with errCrash right after the named
	// step was journaled, as a kill would.
	crashAt string
}

// errCrash is what crashAt ends a run with.
var errCrash = errors.New("simulated crash")

// Result says what a membership change did.
type Result struct {
	// Unchanged is true when the cluster was already there.
	Unchanged bool
	// ID is the member's etcd ID.
	ID uint64
	// CatchUp is how long the learner took to catch up (add); Took is the
	// whole run.
	CatchUp, Took time.Duration
	// HandOff is the leadership transfer away from a removed leader.
	HandOff *runner.HandOff
	// Steps are the steps a dry run would take.
	Steps []string
}

type memberStep struct {
	name string
	what string
	do   func(context.Context, *runner.MemberJournal, *Result) error
}

// memberRun is one membership change under the lock.
type memberRun struct {
	*runner.Runner
	mo Options
}

func newMemberRun(inv *pki.Inventory, o *Options, op string) (*memberRun, error) {
	if err := runner.CheckInventory("member", inv); err != nil {
		return nil, err
	}
	if o.Name == "" {
		return nil, input.Errorf("member: name the node")
	}
	// The name becomes PKI/nodes/NAME, whose bundle a removal archives
	// and deletes: checked before anything else, and the directory it
	// leads to must be inside the PKI directory (no link out of it).
	if err := cluster.CheckName(o.Name); err != nil {
		return nil, input.Errorf("member NAME %v", err)
	}
	if o.MemberTimeout <= 0 {
		o.MemberTimeout = runner.DefaultMemberTimeout
	}
	ro := runner.Config{Out: o.Out, Reporter: o.Reporter, Now: o.Now, CommandTimeout: o.CommandTimeout, DryRun: o.DryRun}
	ro.Defaults()
	r := runner.New(inv, ro, ro.Logger(op))
	if err := r.Inv.Paths.CheckOwnerDir(o.Name, r.Inv.Paths.NodeDir(o.Name)); err != nil {
		return nil, err
	}
	return &memberRun{Runner: r, mo: *o}, nil
}

// steps runs the journal's steps from j.Step on, saving the journal after
// each; the last clears it.
func (m *memberRun) steps(ctx context.Context, j *runner.MemberJournal, steps []memberStep, res *Result) error {
	if m.mo.DryRun {
		on := false
		for i, s := range steps {
			on = on || s.name == j.Step
			if on {
				line := fmt.Sprintf("[dry-run] %d/%d %s: %s", i+1, len(steps), s.name, s.what)
				res.Steps = append(res.Steps, line)
				m.Log.Step(s.name, m.mo.Name).Count(i+1, len(steps)).DryRun("%s", line)
			}
		}
		m.Log.Step("", m.mo.Name).DryRun("[dry-run] nothing changed")
		return nil
	}
	for i, s := range steps {
		if s.name != j.Step {
			continue
		}
		if err := ctx.Err(); err != nil {
			return &runner.InterruptedError{Step: "member " + j.Op + " step " + s.name}
		}
		if err := s.do(context.WithoutCancel(ctx), j, res); err != nil {
			return err
		}
		if m.mo.crashAt == s.name+" unjournaled" {
			return errCrash
		}
		if i+1 < len(steps) {
			j.Step = steps[i+1].name
		} else {
			m.Journal.Member = nil
		}
		if err := m.Journal.Save(m.Inv.Spec.PKIDir, m.Cfg.Now()); err != nil {
			return err
		}
		if m.mo.crashAt == s.name {
			return errCrash
		}
	}
	return nil
}

// journal starts j, or resumes the journaled change when it is the same
// one; another change in progress is an input error naming it.
func (m *memberRun) journal(want *runner.MemberJournal) (*runner.MemberJournal, bool, error) {
	if j := m.Journal.Member; j != nil {
		if j.Op != want.Op || j.Name != want.Name {
			return nil, false, input.Errorf("an earlier member %s %s is unfinished (step %s): run `etcdpki member %s %s` again to finish it first", j.Op, j.Name, j.Step, j.Op, j.Name)
		}
		m.Log.Step(j.Step, j.Name).Info("resuming member %s %s at step %s", j.Op, j.Name, j.Step)
		return j, true, nil
	}
	if j := m.Journal.Revoke; j != nil {
		return nil, false, input.Errorf("%s first", j.Note())
	}
	return want, false, nil
}

func (m *memberRun) save(j *runner.MemberJournal) error {
	if m.mo.DryRun {
		return nil
	}
	m.Journal.Member = j
	return m.Journal.Save(m.Inv.Spec.PKIDir, m.Cfg.Now())
}

func hexID(id uint64) string { return fmt.Sprintf("%x", id) }

func parseID(s string) uint64 {
	var id uint64
	fmt.Sscanf(s, "%x", &id)
	return id
}

// Pending says what the journal's unfinished membership change is,
// for certs list: the node, and a note naming the command that continues
// it (and, for an add that got as far as a learner, how to remove it
// instead). name is "" when there is none.
func Pending(pkiDir string) (name, note string) {
	st, err := runner.LoadState(pkiDir)
	if err != nil || st.Member == nil {
		return "", ""
	}
	j := st.Member
	note = fmt.Sprintf("member %s unfinished at step %s: run `etcdpki member %s %s` to continue it", j.Op, j.Step, j.Op, j.Name)
	if j.Op == "add" && j.ID != "" {
		note += fmt.Sprintf(" (learner %s pending; `etcdctl member remove %s` drops it)", j.ID, j.ID)
	}
	return j.Name, note
}
