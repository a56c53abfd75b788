package runner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// Roll restarts the planned members one at a time.
func (r *Runner) Roll(ctx context.Context, p *Rollout, res *Tally, after AfterRestart) error {
	s := r.Inv.Spec
	var rotated []string
	for i, name := range p.Order {
		np := p.Node(name)
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "restarting " + name}
		}
		bg := context.WithoutCancel(ctx)
		// Every restart starts from a healthy cluster: a member that fell
		// over since the last step must not be joined by a second one.
		h, err := r.Etcd.Health(bg)
		if err != nil {
			return err
		}
		if err := HealthyOrError(s, h, "refusing to restart "+name); err != nil {
			return err
		}
		mr := MemberResult{Name: name}
		// Leadership goes to a rotated member as soon as there is one
		// (after the first restart), not just before the leader's own
		// turn: the settle time after the transfer then precedes a
		// follower's restart, and the old leader is restarted last as a
		// plain follower. Only when the leader is the first or only
		// member to restart does it hand off to a member not rotated.
		leader := memberName(s, h, h.Leader)
		if leader == name || len(rotated) > 0 && slices.Contains(p.Order[i+1:], leader) {
			if err := r.handOff(bg, h, leader, rotated, res); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return &InterruptedError{Step: "restarting " + name}
			}
		}
		// The serials are read once, before the restart: the member is
		// verified to serve these, and these are what the journal
		// records, even if the files change again meanwhile.
		serials, err := DiskSerials(np.All)
		if err != nil {
			return err
		}
		started, _, err := StartedNow(r.Etcd.paths, np.Node)
		if err != nil {
			return err
		}
		serverT, _ := targetOf(np.All, ca.KindServer.Name)
		peerT, _ := targetOf(np.All, ca.KindPeer.Name)
		wantServer, wantPeer := serials[serverT.ID], serials[peerT.ID]
		t0 := time.Now()
		if err := RunCommand(bg, "restart node "+name, np.RestartCmd, r.Cfg.CommandTimeout); err != nil {
			return &MemberError{Member: name, Err: err}
		}
		if err := r.Etcd.WaitServing(bg, np.Node, wantServer, wantPeer, r.Cfg.MemberTimeout); err != nil {
			return &MemberError{Member: name, Err: err}
		}
		mr.Restart = time.Since(t0)
		if after != nil {
			if err := after(bg, np); err != nil {
				return &MemberError{Member: name, Err: err}
			}
		}
		mr.ServerSerial, mr.PeerSerial = wantServer, wantPeer
		// Journal first, then the line: a run killed after printing it
		// never restarts this member again.
		for _, t := range np.Targets {
			r.Journal.InEffect[t.ID] = serials[t.ID]
		}
		r.Journal.Started[name] = started
		if err := r.Journal.Save(s.PKIDir, r.Cfg.Now()); err != nil {
			return err
		}
		res.Members = append(res.Members, mr)
		rotated = append(rotated, name)
		r.Log.Step(StepRestart, name).Count(i+1, len(p.Order)).Serial(wantServer).Took(mr.Restart).Done("[%d/%d] %s: restarted (%s), serving serial %s, caught up in %s", i+1, len(p.Order), name, strings.Join(np.Reasons, ", "), pki.ShortSerial(wantServer), Round(mr.Restart))
	}
	return nil
}

// handOff moves leadership away from leader to a healthy member,
// preferably one already rotated.
func (r *Runner) handOff(ctx context.Context, h *probe.Cluster, leader string, rotated []string, res *Tally) error {
	s := r.Inv.Spec
	to, toName := transferee(s, h, leader, rotated)
	if to == 0 {
		return &MemberError{Member: leader, Err: errors.New("leads and no other healthy, caught-up member can take over")}
	}
	n, _ := s.Node(leader)
	t0 := time.Now()
	if err := r.Etcd.MoveLeader(ctx, n.ClientURLs[0], to); err != nil {
		return &MemberError{Member: leader, Err: err}
	}
	// Measured on loopback under load: stopping the old leader as soon as
	// MoveLeader returned stalled clients for 0.5-0.75 s in most runs;
	// waiting until every member follows the new leader and it has
	// committed in its own term made the stalls rarer and shorter.
	if err := r.Etcd.WaitLeader(ctx, to, r.Cfg.MemberTimeout); err != nil {
		return &MemberError{Member: leader, Err: err}
	}
	// Took ends here: leadership has moved. The settle pause below is not
	// part of the hand-off.
	ho := HandOff{From: leader, To: toName, Start: t0, Took: time.Since(t0)}
	if r.Cfg.HandOffSettle > 0 {
		time.Sleep(r.Cfg.HandOffSettle)
	}
	res.HandOffs = append(res.HandOffs, ho)
	r.Log.Step(StepHandOff, leader).Took(ho.Took).Done("%s: leader; handed leadership to %s in %s (settled %s)", leader, toName, Round(ho.Took), r.Cfg.HandOffSettle)
	return nil
}

// transferee picks who takes over from leader: preferably a member
// already restarted in this run (it will not go down again), else any
// healthy member, the most caught up first.
func transferee(s *cluster.Spec, h *probe.Cluster, leader string, rotated []string) (probe.ID, string) {
	var best probe.ID
	bestName := ""
	var bestIdx uint64
	bestRotated := false
	for i, e := range h.Endpoints {
		if i >= len(s.Nodes) || !e.Healthy || e.Status == nil || s.Nodes[i].Name == leader || e.Status.IsLearner {
			continue
		}
		isRotated := slices.Contains(rotated, s.Nodes[i].Name)
		better := best == 0 ||
			isRotated && !bestRotated ||
			isRotated == bestRotated && e.Status.RaftAppliedIndex > bestIdx
		if better {
			best, bestName, bestIdx, bestRotated = e.Status.MemberID, s.Nodes[i].Name, e.Status.RaftAppliedIndex, isRotated
		}
	}
	return best, bestName
}

// AfterRestart, when not nil, runs once a restarted member passed every
// health gate and before the journal records it: the CA rotation's proof
// that the member loaded the trust it was restarted for.
type AfterRestart func(ctx context.Context, np *NodePlan) error
