package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// Access-control check names: CheckAuth is one row for the cluster,
// CheckGrants one row per certificate common name (the etcd user).
const (
	CheckAuth   = "etcd-auth"
	CheckGrants = "etcd-grants"
)

// AuthOffRisk is the warning verify gives when etcd's auth is off.
const AuthOffRisk = "auth is off: etcd lets every certificate the CA signs read and write every key, so a leaked healthcheck, member server or peer certificate reads every Kubernetes Secret"

// authChecks compares the live cluster's access control with the
// spec's. Auth off is a warning naming the risk. With auth on, only
// root reads users and roles: where the CA is, verify mints a root
// certificate in memory (etcdauth.RootClientTLS) and reports each
// certificate's common name that may do more than the spec grants, that
// has no user where the spec gives one, or that is a node's name with a
// user; without the CA, that it cannot tell (a warning).
func authChecks(ctx context.Context, inv *pki.Inventory, cl *probe.Cluster, apiTLS *tls.Config, timeout time.Duration) []Check {
	var eps []string
	if cl != nil {
		for _, r := range cl.Endpoints {
			if r.Status != nil {
				eps = append(eps, r.Endpoint)
			}
		}
	}
	if apiTLS == nil || len(eps) == 0 {
		return []Check{clusterRow(CheckAuth, Skip, "not run: no endpoint answered etcd's Status")}
	}
	cfg, root := apiTLS, false
	if authority, err := pki.LoadCA(inv.Paths); err == nil {
		if rc, err := etcdauth.RootClientTLS(authority, apiTLS.RootCAs, time.Now()); err == nil {
			cfg, root = rc, true
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: cfg, DialTimeout: timeout, Logger: zap.NewNop()})
	if err != nil {
		return []Check{clusterRow(CheckAuth, Warn, "auth state not read: %v", err)}
	}
	defer cli.Close()
	// Reading every user and role takes a request each.
	ctx, cancel := context.WithTimeout(ctx, 4*timeout)
	defer cancel()
	st, err := cli.AuthStatus(ctx)
	refused := errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrUserEmpty)
	switch {
	case refused && root:
		return []Check{clusterRow(CheckAuth, Fail, "auth is on and etcd refuses its root user (a certificate with CN %s from the CA): %v", cluster.RootUser, err)}
	case refused:
		return []Check{clusterRow(CheckAuth, OK, "auth is on (etcd refused %s the auth status, which only root may read)", clientCN(apiTLS)),
			clusterRow(CheckGrants, Warn, "auth state not readable without root: run verify --spec where the CA is (the PKI directory) to compare each certificate's grants with the spec")}
	case err != nil:
		return []Check{clusterRow(CheckAuth, Warn, "auth state not read: %v", err)}
	case !st.Enabled:
		return []Check{authOff(inv.Spec)}
	}
	on := clusterRow(CheckAuth, OK, "auth is on: each certificate's common name is its etcd user (auth revision %d)", st.AuthRevision)
	if !inv.Spec.Auth.Enabled {
		on.Status, on.Reason = Warn, "auth is on in the cluster but off in the spec: etcdpki auth apply would turn it off; set auth.enabled: true in the spec"
	}
	if !root {
		// The client certificate checked read the auth status, which
		// only root may.
		return []Check{on, clusterRow(CheckGrants, Fail, "%s holds etcd's root role: it reads and writes every key and administers the cluster", clientCN(apiTLS))}
	}
	live, err := etcdauth.Live(ctx, cli)
	if err != nil {
		return []Check{on, clusterRow(CheckGrants, Warn, "auth state not read: %v", err)}
	}
	return append([]Check{on}, grantChecks(inv, live)...)
}

// authOff is the warning for a cluster with auth off, naming the risk
// and what turns it on.
func authOff(s *cluster.Spec) Check {
	fix := "set auth.enabled: true in the spec and run etcdpki auth apply"
	if s.Auth.Enabled {
		fix = "the spec turns it on: run etcdpki auth apply"
	}
	return clusterRow(CheckAuth, Warn, "%s; %s", AuthOffRisk, fix)
}

// grantChecks is one row per common name of the inventory's
// certificates (and etcdpki's probe name, when it has a user): what
// that user may do in live against what the spec gives it.
func grantChecks(inv *pki.Inventory, live etcdauth.State) []Check {
	want := etcdauth.Desired(inv.Spec)
	var cns []string
	for _, t := range inv.Targets {
		if !slices.Contains(cns, t.CommonName) {
			cns = append(cns, t.CommonName)
		}
	}
	if _, _, ok := live.Effective(ca.ProbeCommonName); ok {
		cns = append(cns, ca.ProbeCommonName)
	}
	var out []Check
	for _, cn := range cns {
		st, reason := grantVerdict(inv.Spec, cn, live, want)
		out = append(out, grantsRow(inv, cn, st, reason))
	}
	return out
}

// grantVerdict compares one user's live grants with the spec's.
func grantVerdict(s *cluster.Spec, cn string, live, want etcdauth.State) (Status, string) {
	have, haveRoot, haveUser := live.Effective(cn)
	need, needRoot, needUser := want.Effective(cn)
	_, node := s.Node(cn)
	var fails, warns []string
	if node && haveUser {
		fails = append(fails, "a node's name has an etcd user: the node's server and peer certificates are accepted as a client with its grants (now "+grantList(have)+"); delete the user")
	}
	if haveRoot && !needRoot {
		fails = append(fails, "holds etcd's root role: it reads and writes every key and administers the cluster")
	}
	if extra := etcdauth.Uncovered(have, need); len(extra) > 0 {
		fails = append(fails, "more than the spec grants: "+grantList(extra))
	}
	switch missing := etcdauth.Uncovered(need, have); {
	case needUser && !haveUser:
		fails = append(fails, "no etcd user: etcd refuses its every request; the spec grants "+grantList(need)+"; run etcdpki auth apply")
	case len(missing) > 0:
		warns = append(warns, "lacks what the spec grants: "+grantList(missing)+"; run etcdpki auth apply")
	}
	switch {
	case len(fails) > 0:
		return Fail, strings.Join(append(fails, warns...), "; ")
	case len(warns) > 0:
		return Warn, strings.Join(warns, "; ")
	case needRoot:
		return OK, "etcd's root user, as the spec wants"
	case !haveUser && cn == ca.KindHealthcheck.CommonName:
		return OK, "no etcd user, as the spec wants: etcdctl endpoint health and /health need none, and every read is refused"
	case !haveUser:
		return OK, "no etcd user, as the spec wants: refused as a client"
	}
	return OK, "exactly the spec's grants: " + grantList(need)
}

// grantsRow is a CheckGrants row for user cn, naming its certificates.
func grantsRow(inv *pki.Inventory, cn string, st Status, reason string) Check {
	var ids []string
	for _, t := range inv.Targets {
		if t.CommonName == cn {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) > 0 {
		reason = fmt.Sprintf("%s (%s)", reason, strings.Join(ids, ", "))
	}
	return Check{Name: CheckGrants, Target: cn, Status: st, Reason: reason}
}

// clientCN names the client certificate of cfg for messages.
func clientCN(cfg *tls.Config) string {
	if len(cfg.Certificates) > 0 && len(cfg.Certificates[0].Certificate) > 0 {
		if c, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err == nil {
			return fmt.Sprintf("the client certificate checked (CN %s)", c.Subject.CommonName)
		}
	}
	return "the client certificate checked"
}

func grantList(gs []etcdauth.Grant) string {
	if len(gs) == 0 {
		return "nothing"
	}
	var s []string
	for _, g := range gs {
		s = append(s, g.String())
	}
	return strings.Join(s, ", ")
}
