package runner

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// ProofResult is one member whose renewed certificates were shown in
// effect without a restart.
type ProofResult struct {
	Name string
	// ServerSerial and PeerSerial are what its client and peer ports
	// served over fresh handshakes.
	ServerSerial string
	PeerSerial   string
	// AcceptedBy is the member whose peer port accepted the member's new
	// peer certificate as a client certificate; "" in a one-member
	// cluster.
	AcceptedBy string
	// Took is the whole proof: every handshake and read, run at once.
	Took time.Duration
}

// ProofError is a renewed certificate that fresh handshakes do not show in
// effect. The files in the PKI directory are renewed; the member (or
// client) is not known to use them.
type ProofError struct {
	// Member is the node (or client) whose certificate is in question.
	Member string
	// Port is where it was looked for: "client port 127.0.0.2:2379",
	// "peer port 127.0.0.2:2380", or another member's peer port.
	Port string
	// Want is the serial in the PKI directory and Got the one served
	// ("" when the handshake did not get that far).
	Want, Got string
	// Err is the failure when it is not a wrong serial.
	Err error
	// Client is true when Member names a client, not a node.
	Client bool
}

// memberHint is what a member's failed proof usually means, and what to
// do about it.
const memberHint = "this usually means the deploy did not reach the host, or the member runs with other files than the deployed ones " +
	"(its etcd.conf.yml names other cert-file/key-file paths than nodes[].dir). " +
	"Check that the node's deploy command copies the bundle to nodes[].dir on that host and that etcd reads its files there, " +
	"then run rotate again: it resumes with this member (--restart=always restarts it, which helps only once the files are there)"

// clientHint is the same for a client certificate.
const clientHint = "the members do not accept it: check that they trust the CA that signed it (trusted-ca-file in their etcd.conf.yml), " +
	"then run rotate again"

func (e *ProofError) Error() string {
	who, hint := "member "+e.Member, memberHint
	if e.Client {
		who, hint = "client "+e.Member, clientHint
	}
	if e.Err == nil {
		return fmt.Sprintf("%s: %s serves serial %s, want %s: the renewed certificate is not in effect; %s", who, e.Port, e.Got, e.Want, hint)
	}
	return fmt.Sprintf("%s: %s: %v; %s", who, e.Port, e.Err, hint)
}

func (e *ProofError) Unwrap() error { return e.Err }

// ExitCode is 1: a failed check.
func (e *ProofError) ExitCode() int { return 1 }

// prove shows, for every member whose certificates changed and that is
// not restarted, that the new ones are in effect, one member at a time
// in spec order. The journal records each proof with the serials, so a
// run killed after a proof never proves that member again.
func (r *Runner) ProveNodes(ctx context.Context, p *Rollout, res *Tally, leader probe.ID) error {
	total, i := p.Proofs(), 0
	for _, np := range p.Nodes {
		if !np.Prove {
			continue
		}
		i++
		name := np.Node.Name
		if err := ctx.Err(); err != nil {
			return &InterruptedError{Step: "proving " + name}
		}
		// Read once, like the restart path: these serials are proven and
		// these are what the journal records.
		serials, err := DiskSerials(np.All)
		if err != nil {
			return err
		}
		pr, err := r.Etcd.ProveMember(context.WithoutCancel(ctx), np, serials, leader)
		if err != nil {
			return err
		}
		for _, t := range np.Targets {
			r.Journal.InEffect[t.ID] = serials[t.ID]
		}
		r.Journal.Proofs[name] = Proof{ServerSerial: pr.ServerSerial, PeerSerial: pr.PeerSerial, AcceptedBy: pr.AcceptedBy,
			At: r.Cfg.Now().UTC(), Took: Round(pr.Took).String()}
		// Journal first, then the line: a run killed after printing it
		// never proves this member again.
		if err := r.Journal.Save(r.Inv.Spec.PKIDir, r.Cfg.Now()); err != nil {
			return err
		}
		res.Proofs = append(res.Proofs, pr)
		accepted := "no other member to accept its peer cert"
		if pr.AcceptedBy != "" {
			accepted = "its peer cert accepted by " + pr.AcceptedBy
		}
		r.Log.Step(StepProve, name).Count(i, total).Serial(pr.ServerSerial).Took(pr.Took).Done("[%d/%d] %s: in effect without restart: client port serves %s, peer port serves %s, %s (%d ms)",
			i, total, name, pki.ShortSerial(pr.ServerSerial), pki.ShortSerial(pr.PeerSerial), accepted, pr.Took.Milliseconds())
	}
	return nil
}

// ProveMember checks one member with fresh TLS handshakes (probe.Dial never
// resumes a session, so each one loads the files etcd serves now), all at
// once:
//   - its client port serves the new server serial (the handshake of a
//     health probe with the member's new healthcheck client certificate,
//     which also answers a linearizable read on every client port);
//   - its peer port serves the new peer serial (dialled with its new
//     peer certificate as the client certificate);
//   - another member's peer port accepts that peer certificate: it is
//     what the member presents when it dials its peers. etcd closes such
//     a connection right after the handshake when the certificate's IP
//     SANs do not name the connection's source address (ours, not the
//     member's), so the completed handshake is the proof; probe.Dial
//     waits for the server's verdict on a TLS 1.3 client certificate;
//   - the new peer certificate names the member's first IP, the address
//     it dials its peers from;
//   - the cluster is healthy and leader still leads.
func (c *Cluster) ProveMember(ctx context.Context, np *NodePlan, serials map[string]string, leader probe.ID) (ProofResult, error) {
	n := np.Node
	pr := ProofResult{Name: n.Name}
	idx := slices.IndexFunc(c.Spec.Nodes, func(m cluster.Node) bool { return m.Name == n.Name })
	serverT, _ := targetOf(np.All, ca.KindServer.Name)
	peerT, _ := targetOf(np.All, ca.KindPeer.Name)
	hcT, _ := targetOf(np.All, ca.KindHealthcheck.Name)
	wantServer, wantPeer := serials[serverT.ID], serials[peerT.ID]
	// The member's own bundle says which CAs to trust: during a CA
	// rotation that is the old and the new one.
	bundleCA := hcT.CAPath()
	hcCfg, err := probe.TLSConfig(bundleCA, hcT.CertPath(), hcT.KeyPath())
	if err != nil {
		return pr, err
	}
	peerCfg, err := probe.TLSConfig(bundleCA, peerT.CertPath(), peerT.KeyPath())
	if err != nil {
		return pr, err
	}
	peerCert := peerCfg.Certificates[0].Leaf
	peerAddr, err := PeerAddr(n)
	if err != nil {
		return pr, err
	}
	other, otherAddr := c.otherPeer(n.Name)

	start := time.Now()
	var (
		wg               sync.WaitGroup
		h                *probe.Cluster
		ownLeaf          string
		ownErr, otherErr error
	)
	wg.Go(func() { h = probe.Health(ctx, c.Endpoints(), hcCfg, ProbeTimeout, c.ProbeOpts...) })
	wg.Go(func() { ownLeaf, ownErr = ServingSerial(ctx, peerAddr, peerCfg, c.ProbeOpts...) })
	if other != "" {
		wg.Go(func() { otherErr = AcceptedAsClient(ctx, otherAddr, peerCfg, c.ProbeOpts...) })
	}
	wg.Wait()
	pr.Took = time.Since(start)

	fail := func(port, want, got string, err error) (ProofResult, error) {
		return pr, &ProofError{Member: n.Name, Port: port, Want: want, Got: got, Err: err}
	}
	me := h.Endpoints[idx]
	switch {
	case me.ServerCert == nil:
		return fail("client port "+me.Addr, wantServer, "", me.Err())
	case me.ServerCert.Serial != wantServer:
		return fail("client port "+me.Addr, wantServer, me.ServerCert.Serial, nil)
	case ownErr != nil:
		return fail("peer port "+peerAddr, wantPeer, "", ownErr)
	case ownLeaf != wantPeer:
		return fail("peer port "+peerAddr, wantPeer, ownLeaf, nil)
	case otherErr != nil:
		return fail(fmt.Sprintf("%s's peer port %s", other, otherAddr), wantPeer, "",
			fmt.Errorf("refused the member's new peer certificate %s as a client certificate, so the member could not dial it: %w", wantPeer, otherErr))
	}
	if ip := n.IP(); !slices.ContainsFunc(peerCert.IPAddresses, ip.Equal) {
		return fail("peer certificate "+peerT.CertPath(), wantPeer, wantPeer,
			fmt.Errorf("its IP SANs %v do not name %s, the address the member dials its peers from: they would close its connections", peerCert.IPAddresses, ip))
	}
	for i, r := range h.Endpoints {
		if !r.Healthy {
			who := r.Endpoint
			if i < len(c.Spec.Nodes) {
				who = c.Spec.Nodes[i].Name + "'s client port " + r.Addr
			}
			return fail(who, serials[hcT.ID], "", fmt.Errorf("the new healthcheck client certificate %s got no linearizable read: %w", pki.ShortSerial(serials[hcT.ID]), r.Err()))
		}
	}
	if err := HealthyOrError(c.Spec, h, "after its certificates switched"); err != nil {
		return pr, &MemberError{Member: n.Name, Err: err}
	}
	if h.Leader != leader {
		return pr, &MemberError{Member: n.Name, Err: fmt.Errorf("the leader changed from %s to %s while its certificates switched; nothing of ours restarts a member here, so look at the members' logs", leader, h.Leader)}
	}
	pr.ServerSerial, pr.PeerSerial, pr.AcceptedBy = wantServer, wantPeer, other
	return pr, nil
}

// PeerAddr is the host:port of node n's first peer URL: where its peer
// port is dialled.
func PeerAddr(n cluster.Node) (string, error) {
	_, addr, err := probe.ParseEndpoint(n.PeerURLs[0])
	return addr, err
}

// ClientAddr is the host:port of node n's first client URL: where its
// client port is dialled.
func ClientAddr(n cluster.Node) (string, error) {
	_, addr, err := probe.ParseEndpoint(n.ClientURLs[0])
	return addr, err
}

// otherPeer picks the member whose peer port checks a member's new peer
// certificate: the first other node in spec order.
func (c *Cluster) otherPeer(name string) (string, string) {
	for _, m := range c.Spec.Nodes {
		if m.Name == name {
			continue
		}
		if addr, err := PeerAddr(m); err == nil {
			return m.Name, addr
		}
	}
	return "", ""
}

// AcceptedAsClient completes a fresh handshake with addr presenting cfg's
// certificate and returns nil once the server accepted it. The
// connection is closed at once: nothing is sent over it.
func AcceptedAsClient(ctx context.Context, addr string, cfg *tls.Config, opts ...probe.Option) error {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	conn, _, err := probe.Dial(ctx, addr, cfg, opts...)
	if err != nil {
		return err
	}
	return conn.Close()
}

// ProveClient shows a renewed client certificate accepted on every client
// port, each with a linearizable read, under a healthy cluster.
func (c *Cluster) ProveClient(ctx context.Context, cp *ClientPlan, serial string) (time.Duration, error) {
	cfg, err := probe.TLSConfig(cp.Target.CAPath(), cp.Target.CertPath(), cp.Target.KeyPath())
	if err != nil {
		return 0, err
	}
	start := time.Now()
	h := probe.Health(ctx, c.Endpoints(), cfg, ProbeTimeout, c.ProbeOpts...)
	took := time.Since(start)
	var bad []string
	for i, r := range h.Endpoints {
		if r.Healthy {
			continue
		}
		who := r.Endpoint
		if i < len(c.Spec.Nodes) {
			who = c.Spec.Nodes[i].Name + " (" + r.Addr + ")"
		}
		bad = append(bad, fmt.Sprintf("%s: %v", who, r.Err()))
	}
	if len(bad) > 0 {
		return took, &ProofError{Member: cp.Client.Name, Port: "client ports", Want: serial, Client: true,
			Err: fmt.Errorf("its renewed certificate %s got no linearizable read on %s", pki.ShortSerial(serial), strings.Join(bad, "; "))}
	}
	if err := HealthyOrError(c.Spec, h, "after client "+cp.Client.Name+"'s certificate switched"); err != nil {
		return took, err
	}
	return took, nil
}
