package adopt

import (
	"context"
	"fmt"
	"io"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
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

// checkUser refuses, with auth on, an operator's pair whose common name,
// etcd's user, is not its target's while either is a user the spec
// grants something (root, kube-apiserver's, an extra client's): it would
// hold another user's grants, or its host would lose its own once adopt
// applies auth. A node's pair under its host's name is taken: nodes get
// no user.
func checkUser(s *cluster.Spec, src *source) error {
	if src == nil || !s.Auth.Enabled {
		return nil
	}
	cn, t := src.cert.Subject.CommonName, src.target
	users := etcdauth.Desired(s).Users
	_, isUser := users[cn]
	_, needsUser := users[t.CommonName]
	if cn == t.CommonName || !isUser && !needsUser {
		return nil
	}
	return input.Errorf("%s: has common name %q, but with auth on %s is etcd's user %q: a certificate's common name is its etcd user, so it would hold another user's grants or lack its own; reissue it, or adopt with auth off first",
		src.certPath, cn, t.ID, t.CommonName)
}
