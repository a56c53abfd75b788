package etcdauth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/authpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
)

// RolePrefix marks the roles etcdpki owns: a role named "etcdpki:CN"
// holds user CN's grants. Roles without it, and the users holding only
// them, were made by someone else and are left alone.
const RolePrefix = "etcdpki:"

// Grant is one etcd permission: the single key Key when RangeEnd is "",
// else every key in [Key, RangeEnd).
type Grant struct {
	Key, RangeEnd string
	Access        cluster.Access
}

func (g Grant) String() string {
	if g.RangeEnd == "" {
		return fmt.Sprintf("%s on key %q", g.Access, g.Key)
	}
	if g.RangeEnd == clientv3.GetPrefixRangeEnd(g.Key) {
		return fmt.Sprintf("%s on prefix %q", g.Access, g.Key)
	}
	return fmt.Sprintf("%s on [%q, %q)", g.Access, g.Key, g.RangeEnd)
}

// span is the grant's range, which etcd keys permissions by: granting the
// same range again replaces its access.
func (g Grant) span() string { return g.Key + "\x00" + g.RangeEnd }

// State is a cluster's access control: whether auth is on, each user's
// roles and each role's grants, sorted.
type State struct {
	Enabled bool
	Users   map[string][]string
	Roles   map[string][]Grant
}

// RoleFor is the role etcdpki gives user (a certificate's CN).
func RoleFor(user string) string { return RolePrefix + user }

// Desired is the access control the spec gives: root, with the root
// role; kube-apiserver's CN readwrite on its prefix;
// each extra client with permissions exactly those. The healthcheck
// client gets no user: `etcdctl endpoint health` counts "permission
// denied" as healthy and /health asks for no identity
// (TestHealthcheckNeedsNoGrant). Node names get no user, so a member's
// server and peer certificates are refused as clients.
func Desired(s *cluster.Spec) State {
	st := State{Enabled: s.Auth.Enabled, Users: map[string][]string{}, Roles: map[string][]Grant{}}
	st.Users[cluster.RootUser] = []string{cluster.RootUser}
	st.Roles[cluster.RootUser] = nil
	// Its prefix alone: with auth on etcd compacts itself and the
	// apiserver runs with --etcd-compaction-interval=0, so it touches no
	// key outside (APIServerKeys are what its own compactor would need,
	// and etcd refuses it KV.Compact anyway).
	st.add(ca.KindAPIServer.CommonName, []Grant{prefixGrant(cluster.APIServerPrefix, cluster.AccessReadWrite)})
	for _, c := range s.Clients {
		if c.Name == cluster.ClientAPIServer || c.Name == cluster.ClientHealthcheck || len(c.Permissions) == 0 {
			continue
		}
		var gs []Grant
		for _, p := range c.Permissions {
			g := Grant{Key: p.Key, Access: p.Access}
			if p.Prefix {
				g = prefixGrant(p.Key, p.Access)
			}
			gs = append(gs, g)
		}
		st.add(c.CommonName, gs)
	}
	return st
}

// add gives user its own role with grants, merged with any it has (two
// clients may share a CN).
func (st State) add(user string, grants []Grant) {
	role := RoleFor(user)
	if !slices.Contains(st.Users[user], role) {
		st.Users[user] = append(st.Users[user], role)
		slices.Sort(st.Users[user])
	}
	st.Roles[role] = normalize(append(st.Roles[role], grants...))
}

func prefixGrant(prefix string, a cluster.Access) Grant {
	return Grant{Key: prefix, RangeEnd: clientv3.GetPrefixRangeEnd(prefix), Access: a}
}

// normalize sorts grants and merges those on one range (read and write
// make readwrite), as etcd keeps one permission per range.
func normalize(gs []Grant) []Grant {
	by := map[string]Grant{}
	for _, g := range gs {
		if old, ok := by[g.span()]; ok && old.Access != g.Access {
			g.Access = cluster.AccessReadWrite
		}
		by[g.span()] = g
	}
	out := make([]Grant, 0, len(by))
	for _, g := range by {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.span(), b.span()) })
	return out
}

var accessOf = map[authpb.Permission_Type]cluster.Access{
	authpb.READ: cluster.AccessRead, authpb.WRITE: cluster.AccessWrite, authpb.READWRITE: cluster.AccessReadWrite,
}

var permOf = map[cluster.Access]clientv3.PermissionType{
	cluster.AccessRead: clientv3.PermissionType(clientv3.PermRead), cluster.AccessWrite: clientv3.PermissionType(clientv3.PermWrite),
	cluster.AccessReadWrite: clientv3.PermissionType(clientv3.PermReadWrite),
}

// Live reads the cluster's access control through the Auth API; with
// auth on, cli must be root's.
func Live(ctx context.Context, cli *clientv3.Client) (State, error) {
	st := State{Users: map[string][]string{}, Roles: map[string][]Grant{}}
	status, err := cli.AuthStatus(ctx)
	if err != nil {
		return st, fmt.Errorf("read auth status: %w", err)
	}
	st.Enabled = status.Enabled
	users, err := cli.UserList(ctx)
	if err != nil {
		return st, fmt.Errorf("list etcd users: %w", err)
	}
	for _, u := range users.Users {
		r, err := cli.UserGet(ctx, u)
		if err != nil {
			return st, fmt.Errorf("read etcd user %q: %w", u, err)
		}
		st.Users[u] = slices.Sorted(slices.Values(r.Roles))
	}
	roles, err := cli.RoleList(ctx)
	if err != nil {
		return st, fmt.Errorf("list etcd roles: %w", err)
	}
	for _, name := range roles.Roles {
		r, err := cli.RoleGet(ctx, name)
		if err != nil {
			return st, fmt.Errorf("read etcd role %q: %w", name, err)
		}
		var gs []Grant
		if name == cluster.RootUser {
			// etcd shows root's implicit readwrite on every key; it is
			// no grant to diff.
			st.Roles[name] = nil
			continue
		}
		for _, p := range r.Perm {
			gs = append(gs, Grant{Key: string(p.Key), RangeEnd: string(p.RangeEnd), Access: accessOf[p.PermType]})
		}
		st.Roles[name] = normalize(gs)
	}
	return st, nil
}
