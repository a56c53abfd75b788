package member

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// TestMemberCrashAtEveryStepConverges stops member add and member remove
// after each of their steps, as a kill -9 would (after the step, and for
// the steps that change etcd's membership also before the journal says
// so), and runs the same command again: it must converge, with one
// member per name, no learner left, and the removed member's
// certificates in the CRL.
func TestMemberCrashAtEveryStepConverges(t *testing.T) {
	t.Parallel() // its own cluster, no process-wide state: see TestMain
	c := etcdtest.Start(t, etcdtest.Options{FromEnv: true})
	ctx := context.Background()
	addCrashes := []string{stepCerts, stepLearner + " unjournaled", stepLearner, stepConfig, stepStart, stepPromote, stepProveNew, stepAPIServer, stepConfigs}
	rmCrashes := []string{stepRMAPIServer, stepLeader, stepRemove + " unjournaled", stepRemove, stepRevoke, stepCleanup}
	m4 := c.AddNode(t, nil)
	name := m4.Name
	for i := range max(len(addCrashes), len(rmCrashes)) {
		addAt, rmAt := addCrashes[i%len(addCrashes)], rmCrashes[i%len(rmCrashes)]
		var out bytes.Buffer
		o := Options{Name: name, Out: &out, crashAt: addAt}
		if _, err := Add(ctx, pki.New(c.Spec), o); !errors.Is(err, errCrash) {
			t.Fatalf("add, crash after %s: %v\n%s", addAt, err, out.String())
		}
		// certs list names the unfinished change on the node's rows.
		pn, note := Pending(c.Spec.PKIDir)
		wantLearner := addAt != stepCerts && addAt != stepLearner+" unjournaled"
		switch {
		case addAt == stepConfigs: // the last step: the journal is clear
			if pn != "" {
				t.Errorf("add crashed after its last step: pending %q %q", pn, note)
			}
		case pn != name || !strings.Contains(note, "run `etcdpki member add "+name+"` to continue it") || strings.Contains(note, "pending;") != wantLearner:
			t.Errorf("add crashed after %s: pending %q %q", addAt, pn, note)
		}
		o.crashAt = ""
		if _, err := Add(ctx, pki.New(c.Spec), o); err != nil {
			t.Fatalf("add, crash after %s, run again: %v\n%s", addAt, err, out.String())
		}
		checkConverged(t, c, name, true, "add crashed after "+addAt)

		serials := bundleSerials(t, c.Paths, name)
		node, m := c.RemoveNode(t, name)
		out.Reset()
		o = Options{Name: name, Out: &out, crashAt: rmAt}
		if _, err := Remove(ctx, pki.New(c.Spec), o); !errors.Is(err, errCrash) {
			t.Fatalf("remove, crash after %s: %v\n%s", rmAt, err, out.String())
		}
		o.crashAt = ""
		if _, err := Remove(ctx, pki.New(c.Spec), o); err != nil {
			t.Fatalf("remove, crash after %s, run again: %v\n%s", rmAt, err, out.String())
		}
		checkConverged(t, c, name, false, "remove crashed after "+rmAt)
		crl, err := pki.LoadCRL(c.Paths)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range serials {
			if !crl.Has(s) {
				t.Errorf("remove crashed after %s: serial %s not revoked", rmAt, s)
			}
		}
		// The removed etcd stops by itself; its host is then wiped, as a
		// replacement's would be, and it is added back.
		exited, _ := m.Exited()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("remove crashed after %s: the removed member still runs", rmAt)
		}
		if err := os.RemoveAll(m.DataDir); err != nil {
			t.Fatal(err)
		}
		c.ReAddNode(t, node)
	}
}

func bundleSerials(t *testing.T, p pki.Paths, name string) []string {
	t.Helper()
	var out []string
	for _, kind := range []ca.Kind{ca.KindServer, ca.KindPeer} {
		c, err := runner.ReadCert(filepath.Join(p.NodeCertDir(name), kind.BaseName+pki.CertExt))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, certx.Serial(c))
	}
	return out
}

// checkConverged wants name a voting member (or not a member), every
// other name once, no learner, the journal clear.
func checkConverged(t *testing.T, c *etcdtest.Cluster, name string, member bool, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Client(t).MemberList(ctx)
	if err != nil {
		t.Fatalf("%s: member list: %v", when, err)
	}
	seen := map[string]int{}
	for _, m := range resp.Members {
		seen[m.Name]++
		if m.IsLearner {
			t.Errorf("%s: learner %x (%s) left", when, m.ID, m.Name)
		}
	}
	for n, k := range seen {
		if k > 1 {
			t.Errorf("%s: %d members named %q", when, k, n)
		}
	}
	if (seen[name] == 1) != member {
		t.Errorf("%s: %s member=%v, want %v (%v)", when, name, seen[name] == 1, member, seen)
	}
	st, err := runner.LoadState(c.Spec.PKIDir)
	if err != nil || st.Member != nil || st.Revoke != nil {
		t.Errorf("%s: journal %+v %+v %v", when, st.Member, st.Revoke, err)
	}
}
