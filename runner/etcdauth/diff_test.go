package etcdauth

import (
	"slices"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
)

// TestDiffLeavesForeignRolesAndRootAlone: roles and users someone else
// made stay, root is never deleted, and a user holding a foreign role
// only loses etcdpki's role.
func TestDiffLeavesForeignRolesAndRootAlone(t *testing.T) {
	want := State{Enabled: true, Users: map[string][]string{"root": {"root"}}, Roles: map[string][]Grant{"root": nil}}
	live := State{Enabled: true,
		Users: map[string][]string{"root": {"root"}, "ops": {"ops-role"}, "mixed": {RoleFor("mixed"), "ops-role"}, "gone": {RoleFor("gone")}},
		Roles: map[string][]Grant{"root": nil, "ops-role": {{Key: "/ops/", Access: cluster.AccessRead}}, RoleFor("mixed"): nil, RoleFor("gone"): nil},
	}
	got := Diff(live, want)
	wantChanges := []Change{
		{Op: DeleteUser, User: "gone"},
		{Op: TakeRole, User: "mixed", Role: RoleFor("mixed")},
		{Op: DeleteRole, Role: RoleFor("gone")},
		{Op: DeleteRole, Role: RoleFor("mixed")},
	}
	if !slices.Equal(got, wantChanges) {
		t.Errorf("Diff = %v\nwant %v", got, wantChanges)
	}
}

// TestDiffChangesAccessInPlace: the same range with another access is
// one grant (etcd replaces it), not a revoke and a grant.
func TestDiffChangesAccessInPlace(t *testing.T) {
	role := RoleFor("app")
	live := State{Users: map[string][]string{"root": {"root"}, "app": {role}}, Roles: map[string][]Grant{"root": nil, role: {{Key: "/a/", RangeEnd: "/a0", Access: cluster.AccessRead}}}}
	want := State{Users: live.Users, Roles: map[string][]Grant{"root": nil, role: {{Key: "/a/", RangeEnd: "/a0", Access: cluster.AccessReadWrite}}}}
	got := Diff(live, want)
	if !slices.Equal(got, []Change{{Op: GrantAccess, Role: role, Grant: want.Roles[role][0]}}) {
		t.Errorf("Diff = %v", got)
	}
}

// TestDesiredFromTheSpec: the apiserver's CN gets its prefix alone
// (etcd compacts itself with auth on), an extra client exactly its permissions, the
// healthcheck client and the nodes nothing.
func TestDesiredFromTheSpec(t *testing.T) {
	s := &cluster.Spec{Auth: cluster.Auth{Enabled: true}, Nodes: []cluster.Node{{Name: "etcd-1"}}, Clients: []cluster.Client{
		{Name: cluster.ClientAPIServer}, {Name: cluster.ClientHealthcheck},
		{Name: "backup", CommonName: "backup", Permissions: []cluster.Permission{{Key: "/b/", Prefix: true, Access: cluster.AccessRead}, {Key: "/b/", Prefix: true, Access: cluster.AccessWrite}}},
		{Name: "idle", CommonName: "idle"},
	}}
	st := Desired(s)
	users := sortedKeys(st.Users)
	if !slices.Equal(users, []string{"backup", "kube-apiserver-etcd-client", "root"}) {
		t.Errorf("users %v", users)
	}
	if g := st.Roles[RoleFor("backup")]; !slices.Equal(g, []Grant{{Key: "/b/", RangeEnd: "/b0", Access: cluster.AccessReadWrite}}) {
		t.Errorf("backup's grants %v: read and write on one prefix make readwrite", g)
	}
	api := st.Roles[RoleFor("kube-apiserver-etcd-client")]
	if len(api) != 1 || api[0] != (Grant{Key: "/registry/", RangeEnd: "/registry0", Access: cluster.AccessReadWrite}) {
		t.Errorf("apiserver's grants %v", api)
	}
}
