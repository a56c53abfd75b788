package member

import (
	"context"

	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// syncAuth moves etcd's users and roles to the spec's once the member is
// in (the spec turns auth on), through the run's root client (minted in
// memory from the CA).
func (m *memberRun) syncAuth(ctx context.Context, name string) error {
	cli, err := m.Etcd.AdminClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	changes, err := etcdauth.Sync(ctx, cli, m.Inv.Spec)
	if err != nil {
		return err
	}
	for _, c := range changes {
		m.Log.Step(stepAuth, name).Done("[auth] %s", c)
	}
	return nil
}

// removeUser deletes the removed node's etcd user (its CN is the node's
// name) and etcdpki's role for it, if one was ever made: a user of that
// name would otherwise hold its grants for a later node of the same name.
func (m *memberRun) removeUser(ctx context.Context, name string) error {
	cli, err := m.Etcd.AdminClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	changes, err := etcdauth.RemoveUser(ctx, cli, name)
	if err != nil {
		return err
	}
	for _, c := range changes {
		m.Log.Step(stepRemove, name).Done("[remove] etcd auth: %s", c)
	}
	return nil
}
