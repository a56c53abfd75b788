// members.go parses the spec's nodes and clients sections; load.go the
// rest of the file.

package cluster

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

func (p *parser) node(s *Spec, i int, rn FileNode) (Node, error) {
	at := func(f string) (string, []any) {
		return fmt.Sprintf("nodes[%d].%s", i, f), []any{"nodes", i, f}
	}
	n := Node{Name: rn.Name, ClientPort: rn.ClientPort, PeerPort: rn.PeerPort, Line: p.line("nodes", i),
		Deploy: rn.Deploy, Restart: rn.Restart, InitialClusterState: rn.InitialClusterState}
	if n.Name == "" {
		f, pa := at("name")
		return n, p.errf(f, pa, "missing")
	}
	if err := CheckName(n.Name); err != nil {
		f, pa := at("name")
		return n, p.errf(f, pa, "node name %v", err)
	}
	if err := CheckNotReserved(n.Name); err != nil {
		f, pa := at("name")
		return n, p.errf(f, pa, "node name %v", err)
	}
	if n.Name == ClientAPIServer || n.Name == ClientHealthcheck {
		f, pa := at("name")
		return n, p.errf(f, pa, "node name %q is the name of a built-in client", n.Name)
	}
	if len(rn.IPs) == 0 {
		f, pa := at("ips")
		return n, p.errf(f, pa, "node %q has no IP address", n.Name)
	}
	for j, v := range rn.IPs {
		ip := net.ParseIP(strings.TrimSpace(v))
		if ip == nil {
			return n, p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%q is not an IP address", v)
		}
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		if err := CheckIP(ip); err != nil {
			return n, p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%v", err)
		}
		for _, prev := range n.IPs {
			if prev.Equal(ip) {
				return n, p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%s is listed twice", ip)
			}
		}
		n.IPs = append(n.IPs, ip)
	}
	for j, v := range rn.DNS {
		if err := CheckDNSName(v); err != nil {
			return n, p.errf(fmt.Sprintf("nodes[%d].dns[%d]", i, j), []any{"nodes", i, "dns", j}, "%v", err)
		}
		n.DNSNames = append(n.DNSNames, strings.ToLower(v))
	}
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
			f, pa := at(pp.f)
			return n, p.errf(f, pa, "port %d is out of range 1-65535", pp.v)
		}
	}
	if n.ClientPort == n.PeerPort {
		f, pa := at("peerPort")
		return n, p.errf(f, pa, "peer port %d is the same as the client port", n.PeerPort)
	}
	var err error
	if n.ClientURLs, err = p.urls(n, i, "clientURLs", rn.ClientURLs, urlsFor(n.IPs[:1], n.ClientPort)); err != nil {
		return n, err
	}
	if n.PeerURLs, err = p.urls(n, i, "peerURLs", rn.PeerURLs, urlsFor(n.IPs[:1], n.PeerPort)); err != nil {
		return n, err
	}
	switch {
	case s.Local && rn.Dir != "":
		f, pa := at("dir")
		return n, p.errf(f, pa, "a local spec runs members from their bundles; remove dir or set local: false")
	case s.Local:
		n.Dir = filepath.Join(s.PKIDir, "nodes", n.Name)
	case rn.Dir == "":
		n.Dir = DefaultNodeDir
	case !filepath.IsAbs(rn.Dir):
		f, pa := at("dir")
		return n, p.errf(f, pa, "%q must be an absolute path on the node's host", rn.Dir)
	default:
		n.Dir = filepath.Clean(rn.Dir)
	}
	switch {
	case rn.DataDir != "" && s.Local:
		n.DataDir = p.path(rn.DataDir)
	case rn.DataDir != "":
		if !filepath.IsAbs(rn.DataDir) {
			f, pa := at("dataDir")
			return n, p.errf(f, pa, "%q must be an absolute path on the node's host", rn.DataDir)
		}
		n.DataDir = filepath.Clean(rn.DataDir)
	case s.Local:
		n.DataDir = filepath.Join(s.PKIDir, "data", n.Name)
	default:
		n.DataDir = DefaultDataDir
	}
	switch n.InitialClusterState {
	case "", "new", "existing":
	default:
		f, pa := at("initialClusterState")
		return n, p.errf(f, pa, "%q must be new or existing", n.InitialClusterState)
	}
	for _, t := range []struct{ f, v string }{{"deploy", n.Deploy}, {"restart", n.Restart}} {
		if err := CheckTemplate(t.v); err != nil {
			f, pa := at(t.f)
			return n, p.errf(f, pa, "%v", err)
		}
	}
	return n, nil
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
