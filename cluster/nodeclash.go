// nodeclash.go holds the checks across nodes: no two may share a name,
// a listener, a directory on one host, or an advertised URL.

package cluster

import (
	"fmt"
	"net"
	"strings"
)

// nodes parses each node in turn and adds it to s, after checking it
// against the nodes before it (see nodeClashes).
func (p *parser) nodes(s *Spec, in []FileNode) error {
	if len(in) == 0 {
		return p.errf("nodes", []any{"nodes"}, "no nodes: an etcd cluster needs at least one member")
	}
	c := nodeClashes{
		p:          p,
		seen:       map[string]int{},
		listen:     map[string]string{},
		advertised: map[string]advertisedAt{},
		hostDir:    map[string]string{},
	}
	for i, rn := range in {
		n, err := p.node(s, i, rn)
		if err != nil {
			return err
		}
		if err := c.add(i, n, rn); err != nil {
			return err
		}
		s.Nodes = append(s.Nodes, n)
	}
	return nil
}

// nodeClashes remembers what the nodes parsed so far claim, so that a
// later node cannot claim it too.
type nodeClashes struct {
	p    *parser
	seen map[string]int // node name -> its index
	// listen maps "IP:port" to the node listening there. The 127.0.0.1
	// listener a non-local member gets for its own healthchecks is on its
	// own host's loopback and is left out; every address the spec names
	// is in, so two members can never claim one address and port.
	listen     map[string]string
	advertised map[string]advertisedAt
	// hostDir maps "IP dir" to the node whose files go there: two members
	// on one host cannot share a directory (their server.crt would be one
	// file). A node and a client can: the co-located case.
	hostDir map[string]string
}

// add checks node i's name, listeners, directory and advertised URLs
// against the earlier nodes', in that order, and records them.
func (c *nodeClashes) add(i int, n Node, rn FileNode) error {
	p := c.p
	if prev, dup := c.seen[n.Name]; dup {
		return p.errf(fmt.Sprintf("nodes[%d].name", i), []any{"nodes", i, "name"}, "duplicate node name %q (first at nodes[%d])", n.Name, prev)
	}
	c.seen[n.Name] = i
	for _, ip := range n.IPs {
		for _, port := range []int{n.ClientPort, n.PeerPort} {
			addr := net.JoinHostPort(ip.String(), fmt.Sprint(port))
			if other, clash := c.listen[addr]; clash {
				return p.errf(fmt.Sprintf("nodes[%d]", i), []any{"nodes", i}, "node %q would listen on %s like node %q", n.Name, addr, other)
			}
			c.listen[addr] = n.Name
		}
	}
	for _, ip := range n.IPs {
		key := ip.String() + " " + n.Dir
		if other, clash := c.hostDir[key]; clash {
			return p.errf(fmt.Sprintf("nodes[%d].dir", i), []any{"nodes", i, "dir"}, "%s is also node %q's dir on %s: two members' files would overwrite each other", n.Dir, other, ip)
		}
		c.hostDir[key] = n.Name
	}
	for _, f := range []struct {
		field string
		urls  []string
		raw   []string
	}{{"clientURLs", n.ClientURLs, rn.ClientURLs}, {"peerURLs", n.PeerURLs, rn.PeerURLs}} {
		for j, u := range f.urls {
			if err := c.advertise(i, j, n.Name, f.field, u, f.raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// advertise records URL u, the j-th of node i's field (raw is what the
// spec wrote there, empty for the defaults), unless another node, or this
// one, already advertises it.
func (c *nodeClashes) advertise(i, j int, node, field, u string, raw []string) error {
	p := c.p
	shown := u
	if len(raw) > 0 {
		shown = raw[j] // as the operator wrote it
	}
	at := advertisedAt{node: node, i: i, field: field, j: j, given: len(raw) > 0, shown: shown}
	other, dup := c.advertised[u]
	switch {
	case !dup:
		c.advertised[u] = at
		return nil
	case !at.given && other.given && other.node == node:
		// The clash is with a default the operator never
		// wrote: point at the URL they did write.
		return p.errf(other.name(), other.path(), "%s is also this node's default %s URL (its first IP and %s); choose another port", other.shown, strings.TrimSuffix(field, "URLs"), strings.TrimSuffix(field, "URLs")+"Port")
	}
	return p.errf(at.name(), at.path(), "%s is already advertised by node %q", shown, other.node)
}

// advertisedAt is where an advertised URL came from; given is false for
// a default the spec did not write.
type advertisedAt struct {
	node  string
	i, j  int
	field string
	given bool
	shown string
}

func (a advertisedAt) name() string { return fmt.Sprintf("nodes[%d].%s[%d]", a.i, a.field, a.j) }
func (a advertisedAt) path() []any  { return []any{"nodes", a.i, a.field, a.j} }
