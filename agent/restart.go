package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// StepRestart is the event of a granted restart.
const StepRestart = runner.StepRestart

// RestartTimeout bounds a granted restart: the command (a systemctl
// restart, the harness's control script), then, for a node, the wait
// until its member serves and the cluster is healthy. It is rotate's
// default member timeout with the command's on top: a member replaying a
// large WAL is slow to come back, and a grant is never given up on.
const RestartTimeout = 3 * time.Minute

// restartGranted runs the host's restart command when the EtcdCluster's
// status grants this host a restart that is not done yet, waits until
// the host is healthy again (a node: its member serves its pairs on both
// ports and reads, and every member is healthy; a client: the command's
// exit 0), and then sets the grant's doneAt. Nothing is kept on the host:
// an agent killed at any point finds the grant still without doneAt and
// runs the restart again (a restart is idempotent), so it converges.
func (r *agentRun) restartGranted(ctx context.Context, ec *v1alpha1.EtcdCluster, a *Agent, inv *pki.Inventory) error {
	g := ec.Status.Restart
	if g == nil || g.Host != r.o.Owner || g.DoneAt != nil {
		return nil
	}
	cmd, err := restartCommand(a, inv)
	if err != nil {
		return err
	}
	if err := r.etcdServersFor(a, g); err != nil {
		return err
	}
	line := r.log.Step(StepRestart, r.o.Owner)
	line.Info("%s: restart granted (%s): running %s", r.o.Owner, g.Reason, cmd)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, RestartTimeout)
	defer cancel()
	if err := runner.RunCommand(ctx, "restart "+r.o.Owner, cmd, RestartTimeout); err != nil {
		return fmt.Errorf("granted restart: %w", err)
	}
	proof := "the restart command exited 0"
	if a.Bundle.Node {
		if proof, err = a.waitHealthy(ctx); err != nil {
			return fmt.Errorf("granted restart: %w", err)
		}
	}
	took := time.Since(t0)
	err = r.call(ctx, func(ctx context.Context) error {
		return kube.UpdateStatus(ctx, r.cl, r.key, func(ec *v1alpha1.EtcdCluster) error {
			cur := ec.Status.Restart
			// A grant replaced meanwhile is not ours to close.
			if cur == nil || cur.Host != g.Host || cur.Reason != g.Reason || !cur.GrantedAt.Equal(g.GrantedAt) || cur.DoneAt != nil {
				return nil
			}
			cur.DoneAt = statusTime(time.Now())
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("report the granted restart done: %w", err)
	}
	r.step(StepRestart).Took(took).Done("%s: restarted (%s) in %s: %s", r.o.Owner, g.Reason, runner.Round(took), proof)
	r.event(ctx, ec, corev1.EventTypeNormal, "Restarted", fmt.Sprintf("%s: restarted (%s) in %s: %s", r.o.Owner, g.Reason, runner.Round(took), proof))
	return nil
}

func (r *agentRun) step(step string) runner.Line { return r.log.Step(step, r.o.Owner) }

// restartCommand renders the host's restart template as the CLI's runner
// renders it (runner.NodeCommands, runner.ClientCommands).
func restartCommand(a *Agent, inv *pki.Inventory) (string, error) {
	var cmd string
	var err error
	if a.Bundle.Node {
		n, ok := a.node()
		if !ok {
			return "", fmt.Errorf("node %s is not in the spec", a.Bundle.Owner)
		}
		_, cmd, err = runner.NodeCommands(inv.Paths, n)
	} else {
		c, ok := a.Spec.Client(a.Bundle.Owner)
		if !ok {
			return "", fmt.Errorf("client %s is not in the spec", a.Bundle.Owner)
		}
		_, cmd, err = runner.ClientCommands(c, a.Bundle.Root)
	}
	if err == nil && cmd == "" {
		err = fmt.Errorf("%s: a restart was granted but the spec has no restart command for it", a.Bundle.Owner)
	}
	return cmd, err
}

// waitHealthy waits until the node's member proves its pairs on the wire
// (Prove: both ports serve them, a linearizable read, its peer
// certificate accepted) and every member of the cluster is healthy,
// probed with the node's healthcheck client certificate.
func (a *Agent) waitHealthy(ctx context.Context) (string, error) {
	hc, ok := a.target(ca.KindHealthcheck)
	if !ok {
		return "", errors.New("the node's bundle has no healthcheck client certificate")
	}
	last := errors.New("not probed yet")
	for {
		proof, err := a.Prove(ctx)
		if err == nil {
			tlsCfg, cerr := probe.TLSConfig(hc.CAPath(), hc.CertPath(), hc.KeyPath())
			if cerr != nil {
				return "", cerr
			}
			h := probe.Health(ctx, a.Spec.ClientEndpoints(), tlsCfg, runner.ProbeTimeout)
			if h.Healthy() {
				return proof + "; every member healthy", nil
			}
			err = runner.HealthyOrError(a.Spec, h, "after the restart")
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not healthy within %s: %w", RestartTimeout, last)
		case <-time.After(runner.PollInterval * 5):
		}
	}
}

// restartChanged says a watch event changed the restart grant: the agent
// whose host it names must look at once.
func restartChanged(o, n *v1alpha1.EtcdCluster) bool {
	a, b := o.Status.Restart, n.Status.Restart
	if a == nil || b == nil {
		return a != b
	}
	return a.Host != b.Host || a.Reason != b.Reason || !timeEq(a.GrantedAt, b.GrantedAt) || !timeEq(a.DoneAt, b.DoneAt)
}

func timeEq(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}
