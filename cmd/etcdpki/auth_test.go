package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// authSpec turns auth on and adds an extra client with two grants.
func authSpec(f *etcdtest.SpecFile) {
	on := true
	f.Auth.Enabled = &on
	f.Clients = append(f.Clients, cluster.FileClient{Name: "backup", Permissions: []cluster.FilePermission{
		{Prefix: "/backup/", Access: "readwrite"}, {Key: "/config/leader", Access: "read"},
	}})
}

// liveAuth reads the cluster's access control as root.
func liveAuth(ctx context.Context, t *testing.T, c *etcdtest.Cluster) etcdauth.State {
	t.Helper()
	cli, err := runner.New(pki.New(c.Spec), runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	st, err := etcdauth.Live(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAuthApplyKilledConverges runs etcdpki auth apply as a process and
// kills it with SIGKILL after its k-th change line, for several k: the
// cluster is never left with auth on and no root, and the next run
// converges on the spec and proves every certificate. Before the kills,
// --dry-run prints one line per change and changes nothing.
func TestAuthApplyKilledConverges(t *testing.T) {
	for _, k := range []int{0, 1, 6, 12, 13} {
		t.Run(fmt.Sprintf("after %d changes", k), func(t *testing.T) {
			c := etcdtest.Start(t, etcdtest.Options{Name: "authkill", Members: 1, Edit: authSpec})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if k == 0 {
				before := liveAuth(ctx, t, c)
				out, err := exec.CommandContext(ctx, etcdpkiBinary(t), "auth", "apply", "--spec", c.SpecPath, "--dry-run").CombinedOutput()
				if err != nil {
					t.Fatalf("dry run: %v\n%s", err, out)
				}
				plan := etcdauth.Plan(before, c.Spec)
				if got := strings.Count(string(out), "would "); got != len(plan) || !strings.Contains(string(out), "would enable auth\n") {
					t.Errorf("dry run printed %d changes, the plan has %d:\n%s", got, len(plan), out)
				}
				if after := liveAuth(ctx, t, c); !reflect.DeepEqual(before, after) {
					t.Errorf("the dry run changed the cluster: %+v -> %+v", before, after)
				}
			}
			cmd := exec.CommandContext(ctx, etcdpkiBinary(t), "auth", "apply", "--spec", c.SpecPath)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			seen := 0
			sc := bufio.NewScanner(stdout)
			for seen < k && sc.Scan() {
				if strings.HasPrefix(sc.Text(), "changed: ") {
					seen++
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			mid := liveAuth(ctx, t, c)
			t.Logf("killed after %d change lines: auth on %v, users %v", seen, mid.Enabled, mid.Users)
			if mid.Enabled && !slices.Contains(mid.Users[cluster.RootUser], cluster.RootUser) {
				t.Fatalf("auth is on with no root after a kill: %+v", mid)
			}
			out, err := exec.CommandContext(ctx, etcdpkiBinary(t), "auth", "apply", "--spec", c.SpecPath).CombinedOutput()
			if err != nil {
				t.Fatalf("the run after the kill: %v\n%s", err, out)
			}
			end := liveAuth(ctx, t, c)
			if d := etcdauth.Diff(end, etcdauth.Desired(c.Spec)); len(d) != 0 || !end.Enabled {
				t.Errorf("after the second run: left %v, auth on %v\n%s", d, end.Enabled, out)
			}
			if n := strings.Count(string(out), "proof ok: "); n != len(pki.New(c.Spec).Targets) {
				t.Errorf("%d certificates proven, want %d:\n%s", n, len(pki.New(c.Spec).Targets), out)
			}
		})
	}
}
