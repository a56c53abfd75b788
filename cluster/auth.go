package cluster

import (
	"fmt"
	"strings"
	"unicode"
)

// FileAuth is the spec's auth section: etcd's role-based access control,
// with each certificate's common name as its etcd user.
type FileAuth struct {
	// Enabled turns etcd's auth on (true) or keeps it off (false). Unset,
	// init of a new PKI turns it on and records that in the PKI
	// directory; an existing PKI keeps what it has (off unless recorded),
	// so it keeps working until its operator opts in.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
}

// FilePermission is one grant of an extra client: a prefix or a single
// key, and read, write or readwrite.
type FilePermission struct {
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	Key    string `yaml:"key,omitempty" json:"key,omitempty"`
	Access string `yaml:"access,omitempty" json:"access,omitempty"`
}

// Auth is the validated auth section.
type Auth struct {
	// Enabled is whether etcd's auth is to be on.
	Enabled bool
	// Set says the spec chose Enabled itself; unset, Enabled is the
	// PKI's default (see FileAuth.Enabled), and nothing ever turns a
	// cluster's auth off on that default alone.
	Set bool
}

// Access is what a grant allows: etcd's READ, WRITE or READWRITE.
type Access string

// The accesses a permission may give, as the spec spells them.
const (
	AccessRead      Access = "read"
	AccessWrite     Access = "write"
	AccessReadWrite Access = "readwrite"
)

// Permission is one validated grant: Key alone, or every key starting
// with Key when Prefix is set.
type Permission struct {
	Key    string
	Prefix bool
	Access Access
}

// String is the grant as the spec writes it, for listings and errors.
func (p Permission) String() string {
	if p.Prefix {
		return fmt.Sprintf("prefix %q %s", p.Key, p.Access)
	}
	return fmt.Sprintf("key %q %s", p.Key, p.Access)
}

// APIServerPrefix is kube-apiserver's --etcd-prefix, which etcdpki does
// not change: another client may share it only when its spec says so.
const APIServerPrefix = "/registry/"

// RootUser is etcd's superuser; its certificate is the break-glass one,
// kept in the PKI directory and never in a bundle.
const RootUser = "root"

// rootNodeMsg refuses a node named root with auth on: its server and
// peer certificates carry its name as their common name, which etcd takes
// as the user, so every member's host would hold a superuser's pair.
const rootNodeMsg = `node "root" would be etcd's superuser "root" with auth on (its server and peer certificates' common name): rename it`

// userNode is the index of a node whose name, with s's auth on, is an
// etcd user with grants (root, kube-apiserver's), and why; -1 if none.
func userNode(s *Spec) (int, string) {
	for i, n := range s.Nodes {
		switch {
		case !s.Auth.Enabled:
		case n.Name == RootUser:
			return i, rootNodeMsg
		case n.Name == APIServerCommonName:
			return i, fmt.Sprintf("node %q would be kube-apiserver's etcd user with auth on (its server and peer certificates' common name), readwrite on %q: rename it", n.Name, APIServerPrefix)
		}
	}
	return -1, ""
}

// APIServerCommonName is kube-apiserver's client certificate's common
// name (kubeadm's), its etcd user with auth on.
const APIServerCommonName = "kube-apiserver-etcd-client"

// HealthcheckCommonName is the healthcheck client certificate's common
// name (kubeadm's), in every node's bundle.
const HealthcheckCommonName = "kube-etcd-healthcheck-client"

// CheckAuthNames refuses, when auth is on, the names Parse refuses with
// auth on, for a spec whose auth the PKI's recorded default turned on
// after parsing: a node named root or kube-apiserver's user, a client
// with a node's common name, a client with kube-apiserver's common name
// that does not say shared.
func CheckAuthNames(s *Spec) error {
	if i, msg := userNode(s); i >= 0 {
		return &Error{File: s.File, Field: fmt.Sprintf("nodes[%d].name", i), Msg: msg}
	}
	if !s.Auth.Enabled || s.Source == nil {
		return nil
	}
	for i, rc := range s.Source.Clients {
		c := s.client(rc.Name)
		if c == nil || rc.Name == ClientAPIServer || rc.Name == ClientHealthcheck {
			continue
		}
		if msg := cnClash(s, c); msg != "" {
			return &Error{File: s.File, Field: fmt.Sprintf("clients[%d].commonName", i), Msg: msg}
		}
	}
	return nil
}

// cnClash says why client c's common name would, with auth on, give its
// certificate or another's grants not meant for it: a node's name, the
// healthcheck client's, or kube-apiserver's without shared.
func cnClash(s *Spec, c *Client) string {
	if _, clash := s.Node(c.CommonName); clash {
		// etcd's user is the CN: the node's server and peer
		// certificates would hold this client's grants.
		return fmt.Sprintf("client %q has node %q's common name: with auth its grants would go to that node's server and peer certificates too", c.Name, c.CommonName)
	}
	if c.CommonName == HealthcheckCommonName {
		return fmt.Sprintf("client %q has the healthcheck client's common name %q: with auth its grants would go to every node's healthcheck certificate too", c.Name, c.CommonName)
	}
	if c.CommonName == APIServerCommonName && !c.Shared {
		return fmt.Sprintf("client %q has kube-apiserver's common name %q: with auth its certificate would hold kube-apiserver's grants on %q; set shared: true on client %q if that is meant", c.Name, c.CommonName, APIServerPrefix, c.Name)
	}
	return ""
}

// Overlaps says whether the grant reaches any key under prefix.
func (p Permission) Overlaps(prefix string) bool {
	if !p.Prefix {
		return strings.HasPrefix(p.Key, prefix)
	}
	return strings.HasPrefix(p.Key, prefix) || strings.HasPrefix(prefix, p.Key)
}

// auth validates the auth section and each extra client's permissions,
// after clients has built s.Clients from the same entries.
func (p *parser) auth(s *Spec, r *File) error {
	if r.Auth.Enabled != nil {
		s.Auth = Auth{Enabled: *r.Auth.Enabled, Set: true}
	}
	if i, msg := userNode(s); i >= 0 {
		return p.errf(fmt.Sprintf("nodes[%d].name", i), []any{"nodes", i, "name"}, "%s", msg)
	}
	for i, rc := range r.Clients {
		at := func(f string) (string, []any) { return fmt.Sprintf("clients[%d].%s", i, f), []any{"clients", i, f} }
		c := s.client(rc.Name)
		if c == nil || rc.Name == ClientAPIServer || rc.Name == ClientHealthcheck {
			if len(rc.Permissions) > 0 || rc.Shared {
				f, pa := at("permissions")
				return p.errf(f, pa, "the %s client's grants are fixed by etcdpki; permissions and shared are for extra clients", rc.Name)
			}
			continue
		}
		if c.CommonName == RootUser {
			f, pa := at("commonName")
			return p.errf(f, pa, "client %q would be etcd's superuser %q: the break-glass root certificate is issued to the PKI directory on request, never into a bundle", rc.Name, RootUser)
		}
		c.Shared = rc.Shared
		if msg := cnClash(s, c); msg != "" && (s.Auth.Enabled || len(rc.Permissions) > 0) {
			f, pa := at("commonName")
			return p.errf(f, pa, "%s", msg)
		}
		for j, fp := range rc.Permissions {
			perm, field, err := permission(fp)
			if err != nil {
				f, pa := at(fmt.Sprintf("permissions[%d].%s", j, field))
				return p.errf(f, pa[:len(pa)-1], "%v", err)
			}
			if perm.Overlaps(APIServerPrefix) && !rc.Shared {
				f, pa := at(fmt.Sprintf("permissions[%d].%s", j, field))
				return p.errf(f, pa[:len(pa)-1], "%s overlaps kube-apiserver's prefix %q: set shared: true on client %q to give it kube-apiserver's keys", perm, APIServerPrefix, rc.Name)
			}
			c.Permissions = append(c.Permissions, perm)
		}
	}
	return nil
}

// permission validates one grant; on error it names the field at fault.
func permission(fp FilePermission) (Permission, string, error) {
	switch {
	case fp.Prefix != "" && fp.Key != "":
		return Permission{}, "key", fmt.Errorf("a permission names a prefix or a key, not both")
	case fp.Prefix == "" && fp.Key == "":
		return Permission{}, "prefix", fmt.Errorf("a permission needs a prefix or a key")
	}
	perm := Permission{Key: fp.Key, Access: Access(fp.Access)}
	field := "key"
	if fp.Prefix != "" {
		perm, field = Permission{Key: fp.Prefix, Prefix: true, Access: Access(fp.Access)}, "prefix"
	}
	for _, r := range perm.Key {
		if !unicode.IsPrint(r) {
			return Permission{}, field, fmt.Errorf("%s %q holds a non-printable character", field, perm.Key)
		}
	}
	switch perm.Access {
	case AccessRead, AccessWrite, AccessReadWrite:
	default:
		return Permission{}, "access", fmt.Errorf("unknown access %q (read, write or readwrite)", fp.Access)
	}
	return perm, field, nil
}

// client is the spec's client named name, nil if none.
func (s *Spec) client(name string) *Client {
	for i := range s.Clients {
		if s.Clients[i].Name == name {
			return &s.Clients[i]
		}
	}
	return nil
}
