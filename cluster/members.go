// members.go parses the spec's nodes and clients sections; nodeclash.go
// checks that no two nodes collide; load.go the rest of the file.

package cluster

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// node parses nodes[i] on its own; nodes checks it against the others.
func (p *parser) node(s *Spec, i int, rn FileNode) (Node, error) {
	n := Node{Name: rn.Name, ClientPort: rn.ClientPort, PeerPort: rn.PeerPort, Line: p.line("nodes", i),
		Deploy: rn.Deploy, Restart: rn.Restart, InitialClusterState: rn.InitialClusterState}
	if err := p.nodeName(i, n.Name); err != nil {
		return n, err
	}
	if err := p.nodeAddresses(&n, i, rn); err != nil {
		return n, err
	}
	if err := p.nodeListeners(&n, i, rn); err != nil {
		return n, err
	}
	if err := p.nodeDirs(&n, s, i, rn); err != nil {
		return n, err
	}
	if err := p.nodeCommands(n, i); err != nil {
		return n, err
	}
	return n, nil
}

// nodeErrf is errf for field of nodes[i].
func (p *parser) nodeErrf(i int, field, format string, args ...any) error {
	return p.errf(fmt.Sprintf("nodes[%d].%s", i, field), []any{"nodes", i, field}, format, args...)
}

// nodeName decides whether name can name a member: present, a valid
// name, and not taken by a reserved word or a built-in client.
func (p *parser) nodeName(i int, name string) error {
	if name == "" {
		return p.nodeErrf(i, "name", "missing")
	}
	if err := CheckName(name); err != nil {
		return p.nodeErrf(i, "name", "node name %v", err)
	}
	if err := CheckNotReserved(name); err != nil {
		return p.nodeErrf(i, "name", "node name %v", err)
	}
	if name == ClientAPIServer || name == ClientHealthcheck {
		return p.nodeErrf(i, "name", "node name %q is the name of a built-in client", name)
	}
	return nil
}

// nodeAddresses reads the node's IPs (at least one, each once, IPv4 in
// its 4-byte form) and DNS names (lower case): its certificates' SANs.
func (p *parser) nodeAddresses(n *Node, i int, rn FileNode) error {
	if len(rn.IPs) == 0 {
		return p.nodeErrf(i, "ips", "node %q has no IP address", n.Name)
	}
	for j, v := range rn.IPs {
		ip := net.ParseIP(strings.TrimSpace(v))
		if ip == nil {
			return p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%q is not an IP address", v)
		}
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		if err := CheckIP(ip); err != nil {
			return p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%v", err)
		}
		for _, prev := range n.IPs {
			if prev.Equal(ip) {
				return p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%s is listed twice", ip)
			}
		}
		n.IPs = append(n.IPs, ip)
	}
	for j, v := range rn.DNS {
		if err := CheckDNSName(v); err != nil {
			return p.errf(fmt.Sprintf("nodes[%d].dns[%d]", i, j), []any{"nodes", i, "dns", j}, "%v", err)
		}
		n.DNSNames = append(n.DNSNames, strings.ToLower(v))
	}
	return nil
}

// nodeListeners decides the node's client and peer ports (defaulted, in
// range, distinct) and the URLs it advertises on them.
func (p *parser) nodeListeners(n *Node, i int, rn FileNode) error {
	if n.ClientPort == 0 {
		n.ClientPort = DefaultClientPort
	}
	if n.PeerPort == 0 {
		n.PeerPort = DefaultPeerPort
	}
	for _, pp := range []struct {
		f string
		v int
	}{{"clientPort", n.ClientPort}, {"peerPort", n.PeerPort}} {
		if pp.v < 1 || pp.v > 65535 {
			return p.nodeErrf(i, pp.f, "port %d is out of range 1-65535", pp.v)
		}
	}
	if n.ClientPort == n.PeerPort {
		return p.nodeErrf(i, "peerPort", "peer port %d is the same as the client port", n.PeerPort)
	}
	var err error
	if n.ClientURLs, err = p.urls(*n, i, "clientURLs", rn.ClientURLs, urlsFor(n.IPs[:1], n.ClientPort)); err != nil {
		return err
	}
	if n.PeerURLs, err = p.urls(*n, i, "peerURLs", rn.PeerURLs, urlsFor(n.IPs[:1], n.PeerPort)); err != nil {
		return err
	}
	return nil
}

// nodeDirs decides where the node's files and its data go: under the PKI
// directory for a local spec, else absolute paths on the node's host.
func (p *parser) nodeDirs(n *Node, s *Spec, i int, rn FileNode) error {
	switch {
	case s.Local && rn.Dir != "":
		return p.nodeErrf(i, "dir", "a local spec runs members from their bundles; remove dir or set local: false")
	case s.Local:
		n.Dir = filepath.Join(s.PKIDir, "nodes", n.Name)
	case rn.Dir == "":
		n.Dir = DefaultNodeDir
	case !filepath.IsAbs(rn.Dir):
		return p.nodeErrf(i, "dir", "%q must be an absolute path on the node's host", rn.Dir)
	default:
		n.Dir = filepath.Clean(rn.Dir)
	}
	switch {
	case rn.DataDir != "" && s.Local:
		n.DataDir = p.path(rn.DataDir)
	case rn.DataDir != "":
		if !filepath.IsAbs(rn.DataDir) {
			return p.nodeErrf(i, "dataDir", "%q must be an absolute path on the node's host", rn.DataDir)
		}
		n.DataDir = filepath.Clean(rn.DataDir)
	case s.Local:
		n.DataDir = filepath.Join(s.PKIDir, "data", n.Name)
	default:
		n.DataDir = DefaultDataDir
	}
	return nil
}

// nodeCommands checks how the node is started and changed: its initial
// cluster state and its deploy and restart templates.
func (p *parser) nodeCommands(n Node, i int) error {
	switch n.InitialClusterState {
	case "", "new", "existing":
	default:
		return p.nodeErrf(i, "initialClusterState", "%q must be new or existing", n.InitialClusterState)
	}
	for _, t := range []struct{ f, v string }{{"deploy", n.Deploy}, {"restart", n.Restart}} {
		if err := CheckTemplate(t.v); err != nil {
			return p.nodeErrf(i, t.f, "%v", err)
		}
	}
	return nil
}

// urls checks a node's advertised URLs and returns them in the form etcd
// accepts (see checkURL). Each host must be one of the
// node's certificate SANs: a client or peer dialling it would otherwise
// fail the handshake on a name mismatch.
func (p *parser) urls(n Node, i int, field string, in, def []string) ([]string, error) {
	if len(in) == 0 {
		return def, nil
	}
	sans := n.ServerSANs()
	var out []string
	for j, v := range in {
		host, norm, err := checkURL(v)
		if err == nil && !hostInSANs(host, sans) {
			err = fmt.Errorf("%q: host %s is not among the node's certificate SANs (%s); add it to ips or dns", v, host, strings.Join(sans, ", "))
		}
		if err != nil {
			return nil, p.errf(fmt.Sprintf("nodes[%d].%s[%d]", i, field, j), []any{"nodes", i, field, j}, "%v", err)
		}
		out = append(out, norm)
	}
	return out, nil
}

func (p *parser) clients(s *Spec, in []FileClient) error {
	// The built-in clients' subjects are fixed by the certificate
	// catalogue (package ca), which package pki reads; the spec only
	// says where their files go and how to deploy them.
	api := Client{Name: ClientAPIServer, Dir: DefaultNodeDir}
	hc := Client{Name: ClientHealthcheck}
	var extra []Client
	seen := map[string]int{}
	for i, rc := range in {
		at := func(f string) (string, []any) { return fmt.Sprintf("clients[%d].%s", i, f), []any{"clients", i, f} }
		if err := CheckName(rc.Name); err != nil {
			f, pa := at("name")
			return p.errf(f, pa, "client name %v", err)
		}
		if err := CheckNotReserved(rc.Name); err != nil {
			f, pa := at("name")
			return p.errf(f, pa, "client name %v", err)
		}
		if _, clash := s.Node(rc.Name); clash {
			// `certs renew NAME` selects by owner: one name, one owner.
			f, pa := at("name")
			return p.errf(f, pa, "client name %q is also a node's name", rc.Name)
		}
		if rc.CommonName != "" {
			if err := CheckSubjectValue(rc.CommonName); err != nil {
				f, pa := at("commonName")
				return p.errf(f, pa, "%v", err)
			}
		}
		for j, o := range rc.Organization {
			if err := CheckSubjectValue(o); err != nil {
				return p.errf(fmt.Sprintf("clients[%d].organization[%d]", i, j), []any{"clients", i, "organization", j}, "%v", err)
			}
		}
		if prev, dup := seen[rc.Name]; dup {
			f, pa := at("name")
			return p.errf(f, pa, "duplicate client name %q (first at clients[%d])", rc.Name, prev)
		}
		seen[rc.Name] = i
		if rc.Dir != "" && !filepath.IsAbs(rc.Dir) {
			f, pa := at("dir")
			return p.errf(f, pa, "%q must be an absolute path on the client's host", rc.Dir)
		}
		for _, t := range []struct{ f, v string }{{"deploy", rc.Deploy}, {"restart", rc.Restart}} {
			if err := CheckTemplate(t.v); err != nil {
				f, pa := at(t.f)
				return p.errf(f, pa, "%v", err)
			}
		}
		switch rc.Name {
		case ClientAPIServer, ClientHealthcheck:
			// The well-known clients keep kubeadm's names so that
			// kube-apiserver and etcd's probes accept them unchanged.
			if rc.CommonName != "" || len(rc.Organization) > 0 {
				f, pa := at("commonName")
				return p.errf(f, pa, "the %s client's subject is fixed by kubeadm; only dir, deploy and restart can be set", rc.Name)
			}
			c := &api
			if rc.Name == ClientHealthcheck {
				if rc.Dir != "" || rc.Deploy != "" || rc.Restart != "" {
					f, pa := at("dir")
					return p.errf(f, pa, "the healthcheck client lives in each node's bundle; it has no dir, deploy or restart of its own")
				}
				c = &hc
			}
			if rc.Dir != "" {
				c.Dir = filepath.Clean(rc.Dir)
			}
			c.Deploy, c.Restart = rc.Deploy, rc.Restart
		default:
			c := Client{Name: rc.Name, CommonName: rc.CommonName, Organization: rc.Organization, Dir: rc.Dir, Deploy: rc.Deploy, Restart: rc.Restart}
			if c.CommonName == "" {
				c.CommonName = c.Name
			}
			if c.Dir == "" {
				c.Dir = DefaultNodeDir
			}
			extra = append(extra, c)
		}
	}
	if s.Local {
		api.Dir = filepath.Join(s.PKIDir, "apiserver")
		for i := range extra {
			extra[i].Dir = filepath.Join(s.PKIDir, "clients", extra[i].Name)
		}
	}
	s.Clients = append([]Client{api, hc}, extra...)
	return nil
}
