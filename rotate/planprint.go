package rotate

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/pki"
)

// Print writes the plan for --dry-run: certificates, the verdict on
// every member (restart, and why, or none), the proof, the restart order
// and the commands that would run. The warnings are not repeated: a run
// logs them, dry or not.
func (p *Plan) Print(w io.Writer, mode RestartMode) {
	p.printCerts(w)
	p.printHosts(w, mode)
	p.printMembers(w, mode)
	p.printProof(w, mode)
	p.printRestartOrder(w, mode)
}

// printCerts lists the certificates to renew, and those to issue.
func (p *Plan) printCerts(w io.Writer) {
	fmt.Fprintln(w, "certificates to renew:")
	if len(p.Due) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, d := range p.Due {
		exp := "-"
		if !d.Expires.IsZero() {
			exp = d.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %-36s %-12s expires %s  %s\n", d.Name, d.Status, exp, d.Reason)
	}
	if len(p.Missing) > 0 {
		fmt.Fprintln(w, "certificates to issue (never issued; no member runs with them yet, so no restart):")
		for _, m := range p.Missing {
			fmt.Fprintf(w, "  %s\n", m.Name)
		}
	}
}

// printHosts lists what each node and client receives, and the commands
// that deliver it.
func (p *Plan) printHosts(w io.Writer, mode RestartMode) {
	fmt.Fprintln(w, "hosts to update:")
	for _, np := range p.Nodes {
		what := strings.Join(pki.IDs(np.Targets), ", ")
		if len(np.Targets) == 0 {
			what = "no certificate; " + strings.Join(np.StartChanges, ", ")
		}
		fmt.Fprintf(w, "  node %s: %s\n", np.Node.Name, what)
		if np.DeployCmd != "" {
			fmt.Fprintf(w, "    deploy:  %s\n", np.DeployCmd)
		}
	}
	for _, cp := range p.Clients {
		fmt.Fprintf(w, "  client %s: %s\n", cp.Client.Name, cp.Target.ID)
		if cp.DeployCmd != "" {
			fmt.Fprintf(w, "    deploy:  %s\n", cp.DeployCmd)
		}
		if cp.RestartCmd != "" && mode == RestartAlways {
			fmt.Fprintf(w, "    restart: %s\n", cp.RestartCmd)
		}
	}
}

// printMembers gives the verdict on every member: restart, and why, or
// none.
func (p *Plan) printMembers(w io.Writer, mode RestartMode) {
	fmt.Fprintf(w, "members (--restart=%s):\n", mode)
	if p.Refusal != "" {
		fmt.Fprintf(w, "  (a run would stop here, changing nothing: %s)\n", p.Refusal)
	}
	members := p.Members
	if len(members) == 0 {
		for _, np := range p.Nodes {
			members = append(members, np.Node.Name)
		}
	}
	for _, name := range members {
		np := p.Node(name)
		if np == nil {
			fmt.Fprintf(w, "  %s: nothing changes\n", name)
			continue
		}
		fmt.Fprintf(w, "  %s: %s\n", name, verdict(np, mode))
	}
}

// printProof says what will show that the new files are in effect, and
// on which members, or that nothing will.
func (p *Plan) printProof(w io.Writer, mode RestartMode) {
	switch {
	case p.Proofs() > 0:
		fmt.Fprintln(w, "proof, after each member's files switch and its deploy ran (fresh TLS handshakes, no session resumption):")
		fmt.Fprintln(w, "  its client and peer ports serve the new serials; its new peer certificate is accepted by another member's")
		fmt.Fprintln(w, "  peer port; its new healthcheck client certificate answers a linearizable read on every client port;")
		fmt.Fprintln(w, "  the cluster stays healthy under the same leader")
		for _, np := range p.Nodes {
			if np.Prove {
				fmt.Fprintf(w, "    %s\n", np.Node.Name)
			}
		}
	case mode != RestartAlways && p.NoVerify && len(p.Nodes) > 0:
		fmt.Fprintln(w, "proof: none (--no-verify): nothing shows that the deploy reached the hosts")
	}
}

// printRestartOrder gives the members to restart, in order, with their
// role and command, or why none restarts.
func (p *Plan) printRestartOrder(w io.Writer, mode RestartMode) {
	if p.Restarts() == 0 {
		switch {
		case mode == RestartNever && p.NoVerify:
			fmt.Fprintln(w, "restart order: none (--restart=never: files are swapped only)")
		case mode == RestartNever:
			fmt.Fprintln(w, "restart order: none (--restart=never: files are swapped, then proven in effect)")
		default:
			fmt.Fprintln(w, "restart order: none (nothing etcd reads only at start changes)")
		}
		return
	}
	fmt.Fprintln(w, "restart order (followers first, leader last):")
	if p.OrderNote != "" {
		fmt.Fprintf(w, "  (%s)\n", p.OrderNote)
	}
	for i, name := range p.Order {
		np := p.Node(name)
		role := "follower"
		switch {
		case name == p.Leader && len(p.Order) > 1:
			role = "leader: after the first restart it hands leadership to that member (MoveLeader), then goes last as a follower"
		case name == p.Leader:
			role = "leader: the only member to restart; it first hands leadership to another member (MoveLeader), then goes as a follower"
		}
		fmt.Fprintf(w, "  [%d/%d] %s (%s; %s)\n        restart: %s\n", i+1, len(p.Order), name, role, strings.Join(np.Reasons, ", "), np.RestartCmd)
	}
}
