package etcdauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/cluster"
)

// Op is one kind of change to a cluster's access control.
type Op string

// The changes Diff makes, in the order Apply must make them.
const (
	AddRole      Op = "add role"
	GrantAccess  Op = "grant"
	RevokeAccess Op = "revoke"
	AddUser      Op = "add user"
	GiveRole     Op = "give role"
	TakeRole     Op = "take role"
	DeleteUser   Op = "delete user"
	DeleteRole   Op = "delete role"
	EnableAuth   Op = "enable auth"
	DisableAuth  Op = "disable auth"
)

// Change is one step of a diff.
type Change struct {
	Op   Op
	User string
	Role string
	// Grant is what GrantAccess gives or Revoke takes.
	Grant Grant
}

// String is the change as --dry-run prints it.
func (c Change) String() string {
	switch c.Op {
	case AddRole, DeleteRole:
		return fmt.Sprintf("%s %s", c.Op, c.Role)
	case GrantAccess, RevokeAccess:
		return fmt.Sprintf("%s role %s %s", c.Op, c.Role, c.Grant)
	case AddUser, DeleteUser:
		return fmt.Sprintf("%s %s", c.Op, c.User)
	case GiveRole, TakeRole:
		return fmt.Sprintf("%s %s to user %s", c.Op, c.Role, c.User)
	}
	return string(c.Op)
}

// owned says whether etcdpki manages role: its own roles and root.
func owned(role string) bool { return role == cluster.RootUser || strings.HasPrefix(role, RolePrefix) }

// Diff is the changes that move live to want, in a safe order: root's
// role and user come before anything else, roles get their grants before
// users get the roles, what the spec no longer gives is taken away, and
// auth is enabled last, so a run killed at any step leaves auth as it
// was or on with root in place. Roles and users etcdpki does not own
// (RolePrefix) are left alone; root is never deleted.
func Diff(live, want State) []Change {
	var out []Change
	for _, role := range rootFirst(want.Roles) {
		if _, ok := live.Roles[role]; !ok {
			out = append(out, Change{Op: AddRole, Role: role})
		}
		have := map[string]Grant{}
		for _, g := range live.Roles[role] {
			have[g.span()] = g
		}
		keep := map[string]bool{}
		for _, g := range want.Roles[role] {
			keep[g.span()] = true
			if have[g.span()] != g {
				out = append(out, Change{Op: GrantAccess, Role: role, Grant: g})
			}
		}
		for _, g := range live.Roles[role] {
			if !keep[g.span()] {
				out = append(out, Change{Op: RevokeAccess, Role: role, Grant: g})
			}
		}
	}
	for _, user := range rootFirst(want.Users) {
		if _, ok := live.Users[user]; !ok {
			out = append(out, Change{Op: AddUser, User: user})
		}
		for _, role := range want.Users[user] {
			if !slices.Contains(live.Users[user], role) {
				out = append(out, Change{Op: GiveRole, User: user, Role: role})
			}
		}
	}
	out = append(out, removals(live, want)...)
	switch {
	case want.Enabled && !live.Enabled:
		out = append(out, Change{Op: EnableAuth})
	case !want.Enabled && live.Enabled:
		out = append(out, Change{Op: DisableAuth})
	}
	return out
}

// removals takes away owned roles the spec no longer gives, deletes the
// users left with no role of their own, then the roles.
func removals(live, want State) []Change {
	var out []Change
	for _, user := range sortedKeys(live.Users) {
		if user == cluster.RootUser {
			continue
		}
		foreign := false
		var take []Change
		for _, role := range live.Users[user] {
			switch {
			case !owned(role):
				foreign = true
			case !slices.Contains(want.Users[user], role):
				take = append(take, Change{Op: TakeRole, User: user, Role: role})
			}
		}
		_, wanted := want.Users[user]
		if !wanted && !foreign && len(live.Users[user]) > 0 {
			out = append(out, Change{Op: DeleteUser, User: user})
			continue
		}
		out = append(out, take...)
	}
	for _, role := range sortedKeys(live.Roles) {
		if _, ok := want.Roles[role]; !ok && owned(role) && role != cluster.RootUser {
			out = append(out, Change{Op: DeleteRole, Role: role})
		}
	}
	return out
}

// rootFirst is sortedKeys with root moved to the front: root's role and
// user exist before anything else changes.
func rootFirst[V any](m map[string]V) []string {
	keys := sortedKeys(m)
	if i := slices.Index(keys, cluster.RootUser); i > 0 {
		keys = append([]string{cluster.RootUser}, slices.Delete(keys, i, i+1)...)
	}
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

// Apply makes the changes in order through cli (root's once auth is
// on). Each change is idempotent against a cluster already past it
// (ErrRoleAlreadyExist, ErrUserAlreadyExist and their opposites count as
// done), so a run killed half way converges when run again.
func Apply(ctx context.Context, cli *clientv3.Client, changes []Change) error {
	noPass := &clientv3.UserAddOptions{NoPassword: true}
	for _, c := range changes {
		var err error
		switch c.Op {
		case AddRole:
			_, err = cli.RoleAdd(ctx, c.Role)
		case GrantAccess:
			_, err = cli.RoleGrantPermission(ctx, c.Role, c.Grant.Key, c.Grant.RangeEnd, permOf[c.Grant.Access])
		case RevokeAccess:
			_, err = cli.RoleRevokePermission(ctx, c.Role, c.Grant.Key, c.Grant.RangeEnd)
		case AddUser:
			_, err = cli.UserAddWithOptions(ctx, c.User, "", noPass)
		case GiveRole:
			_, err = cli.UserGrantRole(ctx, c.User, c.Role)
		case TakeRole:
			_, err = cli.UserRevokeRole(ctx, c.User, c.Role)
		case DeleteUser:
			_, err = cli.UserDelete(ctx, c.User)
		case DeleteRole:
			_, err = cli.RoleDelete(ctx, c.Role)
		case EnableAuth:
			_, err = cli.AuthEnable(ctx)
		case DisableAuth:
			_, err = cli.AuthDisable(ctx)
		}
		if err != nil && !alreadyDone(c.Op, err) {
			return fmt.Errorf("etcd auth: %s: %w", c, err)
		}
	}
	return nil
}

// done is the error each change returns against a cluster already past
// it.
var done = map[Op]error{
	AddRole: rpctypes.ErrRoleAlreadyExist, AddUser: rpctypes.ErrUserAlreadyExist,
	DeleteRole: rpctypes.ErrRoleNotFound, DeleteUser: rpctypes.ErrUserNotFound,
	RevokeAccess: rpctypes.ErrPermissionNotGranted, TakeRole: rpctypes.ErrRoleNotGranted,
}

func alreadyDone(op Op, err error) bool {
	want, ok := done[op]
	return ok && (errors.Is(err, want) || err.Error() == want.Error())
}

// Plan is the diff from live to the spec's access control. A spec that
// leaves auth.enabled unset and whose PKI has no default of on keeps
// live's auth as it is: only an explicit enabled: false turns a
// cluster's auth off.
func Plan(live State, s *cluster.Spec) []Change {
	want := Desired(s)
	if !s.Auth.Set && !want.Enabled {
		want.Enabled = live.Enabled
	}
	return Diff(live, want)
}

// Sync reads the live state, diffs it with the spec's (Plan) and applies
// the diff; it returns what it changed.
func Sync(ctx context.Context, cli *clientv3.Client, s *cluster.Spec) ([]Change, error) {
	live, err := Live(ctx, cli)
	if err != nil {
		return nil, err
	}
	changes := Plan(live, s)
	return changes, Apply(ctx, cli, changes)
}

// RemoveUser deletes user and the role etcdpki gave it, when they exist:
// member remove takes away a removed node's identity (its CN), whoever
// made it.
func RemoveUser(ctx context.Context, cli *clientv3.Client, user string) ([]Change, error) {
	live, err := Live(ctx, cli)
	if err != nil {
		return nil, err
	}
	var changes []Change
	if _, ok := live.Users[user]; ok {
		changes = append(changes, Change{Op: DeleteUser, User: user})
	}
	if _, ok := live.Roles[RoleFor(user)]; ok {
		changes = append(changes, Change{Op: DeleteRole, Role: RoleFor(user)})
	}
	return changes, Apply(ctx, cli, changes)
}
