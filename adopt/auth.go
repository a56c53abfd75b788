package adopt

import (
	"context"
	"fmt"
	"io"

	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// syncAuth moves the adopted cluster's etcd users and roles to the
// spec's when the spec turns auth on (an adopted PKI is an existing one:
// auth stays as the cluster has it unless the spec says on), with a
// root client minted in memory from the CA just written, then tries each
// certificate whose key the PKI holds, as etcdpki auth apply does.
func syncAuth(ctx context.Context, inv *pki.Inventory, out io.Writer) error {
	if !inv.Spec.Auth.Enabled {
		return nil
	}
	cli, err := runner.New(inv, runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	changes, err := etcdauth.Sync(ctx, cli, inv.Spec)
	if err != nil {
		return fmt.Errorf("adopted, but etcd's users and roles are not the spec's yet: %w (run etcdpki auth apply)", err)
	}
	for _, c := range changes {
		fmt.Fprintf(out, "[auth] %s\n", c)
	}
	for _, p := range etcdauth.Prove(ctx, inv, etcdauth.Desired(inv.Spec)) {
		if p.Err != nil {
			return fmt.Errorf("adopted, auth applied, but %s (run etcdpki auth apply to see every certificate)", p)
		}
	}
	return nil
}
