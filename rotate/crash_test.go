package rotate_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

type killed struct{ step string }

// TestRotateCrashAtEveryStepConverges kills a rotation (renew every
// certificate, --restart=never --no-verify: no cluster runs) at each of its filesystem steps, its
// journal writes included; the next run must finish, and then the
// journal, the files and the CA agree.
func TestRotateCrashAtEveryStepConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-point harness: not in -short")
	}
	ctx := context.Background()
	all := rotate.Options{RenewBefore: 87600 * time.Hour, Restart: rotate.RestartNever, NoVerify: true}
	steps := 0
	for n := 1; ; n++ {
		s := localSpec(t)
		o, inv := all, pki.New(s)
		if _, err := rotate.Run(ctx, inv, rotate.Options{Restart: rotate.RestartNever, NoVerify: true}); err != nil {
			t.Fatal(err)
		}
		stopped := func() (stopped string) {
			count := 0
			defer atomicdir.SetHook(func(op, path string) error {
				if count++; count == n {
					panic(killed{fmt.Sprintf("%d: %s %s", n, op, path)})
				}
				return nil
			})()
			defer func() {
				if r := recover(); r != nil {
					stopped = r.(killed).step
				}
			}()
			if _, err := rotate.Run(ctx, inv, o); err != nil {
				t.Fatalf("run with no crash before step %d: %v", n, err)
			}
			return ""
		}()
		if stopped == "" {
			break
		}
		steps++
		if _, err := rotate.Run(ctx, inv, o); err != nil {
			t.Fatalf("killed at step %s; next run: %v", stopped, err)
		}
		if p := dryRun(t, s); !p.Empty() {
			t.Errorf("killed at step %s: after the next run something is still to do: due %d, missing %d, nodes %d", stopped, len(p.Due), len(p.Missing), len(p.Nodes))
		}
		infos, err := pki.List(pki.New(s), 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		st, err := runner.LoadState(s.PKIDir)
		if err != nil {
			t.Fatalf("killed at step %s: journal: %v", stopped, err)
		}
		caPEM, _ := os.ReadFile(pki.Paths{PKI: s.PKIDir}.CACert())
		for _, i := range infos {
			if i.Status != pki.StatusOK {
				t.Errorf("killed at step %s: %s is %s: %s", stopped, i.Name, i.Status, i.Reason)
			}
			if i.Target == nil {
				continue
			}
			if st.InEffect[i.Name] != i.Serial {
				t.Errorf("killed at step %s: journal has %s at serial %q, the file %q", stopped, i.Name, st.InEffect[i.Name], i.Serial)
			}
			if b, _ := os.ReadFile(filepath.Join(i.Target.CADir, "ca.crt")); !bytes.Equal(b, caPEM) {
				t.Errorf("killed at step %s: %s's bundle holds another CA", stopped, i.Name)
			}
			c, _ := os.ReadFile(i.Target.CertPath())
			k, _ := os.ReadFile(i.Target.KeyPath())
			if err := ca.CheckPair(c, k); err != nil {
				t.Errorf("killed at step %s: %s: %v", stopped, i.Name, err)
			}
		}
		if t.Failed() {
			return
		}
	}
	if steps < 20 {
		t.Fatalf("only %d steps: the hook does not see rotate's writes", steps)
	}
	t.Logf("rotate --restart=never of 2 nodes: killed at each of %d steps, every next run converged", steps)
}
