package rotate

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

// roll restarts the planned members one at a time.
func (r *runner) roll(ctx context.Context, p *Plan, res *Result, after afterRestart) error {
	s := r.o.Spec
	var rotated []string
	for i, name := range p.Order {
		np := p.node(name)
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "restarting " + name}
		}
		bg := context.WithoutCancel(ctx)
		// Every restart starts from a healthy cluster: a member that fell
		// over since the last step must not be joined by a second one.
		h, err := r.etcd.health(bg)
		if err != nil {
			return err
		}
		if err := healthyOrError(s, h, "refusing to restart "+name); err != nil {
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
		serials, err := diskSerials(np.All)
		if err != nil {
			return err
		}
		started, _, err := startedNow(r.etcd.paths, np.Node)
		if err != nil {
			return err
		}
		serverT, _ := targetOf(np.All, ca.KindServer.Name)
		peerT, _ := targetOf(np.All, ca.KindPeer.Name)
		wantServer, wantPeer := serials[serverT.ID], serials[peerT.ID]
		t0 := time.Now()
		if err := runCommand(bg, "restart node "+name, np.RestartCmd, r.o.CommandTimeout); err != nil {
			return &MemberError{Member: name, Err: err}
		}
		if err := r.etcd.waitServing(bg, np.Node, wantServer, wantPeer, r.o.MemberTimeout); err != nil {
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
			r.st.InEffect[t.ID] = serials[t.ID]
		}
		r.st.Started[name] = started
		if err := r.st.save(s.PKIDir, r.o.Now()); err != nil {
			return err
		}
		res.Members = append(res.Members, mr)
		rotated = append(rotated, name)
		r.log.printf("[%d/%d] %s: restarted (%s), serving serial %s, caught up in %s", i+1, len(p.Order), name, strings.Join(np.Reasons, ", "), pki.ShortSerial(wantServer), round(mr.Restart))
	}
	return nil
}

// handOff moves leadership away from leader to a healthy member,
// preferably one already rotated.
func (r *runner) handOff(ctx context.Context, h *probe.Cluster, leader string, rotated []string, res *Result) error {
	s := r.o.Spec
	to, toName := transferee(s, h, leader, rotated)
	if to == 0 {
		return &MemberError{Member: leader, Err: errors.New("leads and no other healthy, caught-up member can take over")}
	}
	n, _ := s.Node(leader)
	t0 := time.Now()
	if err := r.etcd.moveLeader(ctx, n.ClientURLs[0], to); err != nil {
		return &MemberError{Member: leader, Err: err}
	}
	// Measured on loopback under load: stopping the old leader as soon as
	// MoveLeader returned stalled clients for 0.5-0.75 s in most runs;
	// waiting until every member follows the new leader and it has
	// committed in its own term made the stalls rarer and shorter.
	if err := r.etcd.waitLeader(ctx, to, r.o.MemberTimeout); err != nil {
		return &MemberError{Member: leader, Err: err}
	}
	// Took ends here: leadership has moved. The settle pause below is not
	// part of the hand-off.
	ho := HandOff{From: leader, To: toName, Start: t0, Took: time.Since(t0)}
	if r.o.HandOffSettle > 0 {
		time.Sleep(r.o.HandOffSettle)
	}
	res.HandOffs = append(res.HandOffs, ho)
	r.log.printf("%s: leader; handed leadership to %s in %s (settled %s)", leader, toName, round(ho.Took), r.o.HandOffSettle)
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

// afterRestart, when not nil, runs once a restarted member passed every
// health gate and before the journal records it: the CA rotation's proof
// that the member loaded the trust it was restarted for.
type afterRestart func(ctx context.Context, np *NodePlan) error
