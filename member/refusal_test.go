package member_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/verify"
)

// journalBytes is the journal as on disk ("" when there is none).
func journalBytes(c *etcdtest.Cluster) string {
	b, _ := os.ReadFile(filepath.Join(c.Paths.PKI, runner.StateFile))
	return string(b)
}

func membershipWarnings(t *testing.T, c *etcdtest.Cluster) []string {
	t.Helper()
	rep, err := verify.Evaluate(context.Background(), pki.New(c.Spec), verify.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range rep.Checks {
		if ch.Name == verify.CheckMembership {
			out = append(out, string(ch.Status)+" "+ch.Reason)
		}
	}
	return out
}

// TestMemberRefusalsAndDryRun: a dry run prints every step and changes
// nothing; verify --spec warns on a spec node that is not a member and on
// a stray learner, naming the command; an add while another learner is
// pending and a removal that would lose quorum are refused with nothing
// changed; the stray learner of the spec's node is continued by member
// add.
func TestMemberRefusalsAndDryRun(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := etcdtest.Start(t, etcdtest.Options{})
	ctx := context.Background()
	m4 := c.AddNode(t, nil)
	m5 := c.AddNode(t, nil)

	if w := membershipWarnings(t, c); len(w) != 2 || !strings.Contains(w[0], "spec node etcd-4") || !strings.Contains(w[0], "etcdpki member add etcd-4") {
		t.Errorf("verify before the add: %q", w)
	}

	// Dry run: every step printed, nothing changed.
	journal := journalBytes(c)
	var out bytes.Buffer
	res, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: m4.Name, Out: &out, DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	t.Logf("dry run:\n%s", out.String())
	if len(res.Steps) != 8 || !strings.Contains(out.String(), "etcd member add --learner "+m4.PeerURL) {
		t.Errorf("dry run steps %q", res.Steps)
	}
	if voters, learners := memberList(t, c); len(voters) != 3 || len(learners) != 0 || journalBytes(c) != journal || m4.Running() {
		t.Errorf("the dry run changed something: voters %v learners %v", voters, learners)
	}

	// A stray learner for etcd-4, as an add killed after MemberAddAsLearner
	// and before its journal would leave.
	// etcd refuses membership changes until every member has been
	// connected for 5 s (strict reconfig check): retried meanwhile.
	cli := c.Client(t)
	for deadline := time.Now().Add(30 * time.Second); ; {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cli.MemberAddAsLearner(cctx, []string{m4.PeerURL})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if w := membershipWarnings(t, c); !strings.Contains(strings.Join(w, "\n"), "learner etcd-4") || !strings.Contains(strings.Join(w, "\n"), "`etcdpki member add etcd-4`") {
		t.Errorf("verify with a stray learner: %q", w)
	}
	// Another add while it is pending: exit 1, one line, nothing changed.
	journal = journalBytes(c)
	_, err = member.Add(ctx, pki.New(c.Spec), member.Options{Name: m5.Name, Out: &out})
	var ue *runner.UnhealthyError
	if !errors.As(err, &ue) || ue.ExitCode() != 1 || !strings.Contains(err.Error(), "is pending") || strings.Contains(err.Error(), "\n") {
		t.Errorf("add while a learner is pending: %v", err)
	}
	if journalBytes(c) != journal || m5.Running() {
		t.Error("the refused add changed something")
	}
	// member add etcd-4 continues the stray learner.
	out.Reset()
	if _, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: m4.Name, Out: &out}); err != nil {
		t.Fatalf("continue the stray learner: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "never started: continuing it") {
		t.Errorf("the add did not say it continued the learner:\n%s", out.String())
	}
	if voters, learners := memberList(t, c); len(voters) != 4 || len(learners) != 0 {
		t.Errorf("after continuing: voters %v learners %v", voters, learners)
	}

	// Quorum: etcd-2 and etcd-3 down, removing etcd-4 would leave 3 voting
	// members with 1 healthy: exit 1, nothing changed.
	for _, n := range []string{etcdtest.NodeName(2), etcdtest.NodeName(3)} {
		if err := c.Member(n).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	c.RemoveNode(t, m4.Name)
	journal = journalBytes(c)
	_, err = member.Remove(ctx, pki.New(c.Spec), member.Options{Name: m4.Name, Out: &out})
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "quorum needs 2") || strings.Contains(err.Error(), "\n") {
		t.Errorf("remove that would lose quorum: %v", err)
	}
	if journalBytes(c) != journal {
		t.Error("the refused remove changed the journal")
	}
	if _, err := os.Stat(c.Paths.NodeDir(m4.Name)); err != nil {
		t.Errorf("the refused remove moved the bundle: %v", err)
	}
	// Still in the spec: exit 2.
	_, err = member.Remove(ctx, pki.New(c.Spec), member.Options{Name: etcdtest.NodeName(1)})
	var ie *input.Error
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "delete it there first") {
		t.Errorf("remove of a spec node: %v", err)
	}
}
