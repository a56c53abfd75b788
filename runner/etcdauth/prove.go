package etcdauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// ProofKey is the key a write is proven on under a granted prefix: the
// proof's write sits in a transaction branch that never runs (see
// writeOp), so nothing is ever written to it.
const ProofKey = "etcdpki-auth-proof"

// proofTimeout bounds one proof request; a healthy cluster on a LAN
// answers in milliseconds, and a member electing a leader within this.
const proofTimeout = 5 * time.Second

// Proof is one certificate tried on the wire with auth on: an operation
// its grants permit went through and one they do not was refused with
// permission denied.
type Proof struct {
	// Target is the certificate's inventory ID; User its CN.
	Target, User string
	// Permitted and Refused say what was tried.
	Permitted, Refused string
	// Err says how the certificate did not behave as the spec says.
	Err error
	// Skipped says its key is not in the PKI directory (a certificate
	// adopt found in use on its host): there is nothing to present.
	Skipped bool
}

func (p Proof) String() string {
	if p.Skipped {
		return fmt.Sprintf("%s (user %s): not tried, its key is not in the PKI directory", p.Target, p.User)
	}
	if p.Err != nil {
		return fmt.Sprintf("%s (user %s): %v", p.Target, p.User, p.Err)
	}
	return fmt.Sprintf("%s (user %s): permitted %s; refused %s", p.Target, p.User, p.Permitted, p.Refused)
}

// Prove tries every certificate of inv whose pair is in the PKI
// directory against the cluster, with want's grants (Desired of the same
// spec, auth on): each grant's read and write permitted, a read outside
// them refused; a certificate without grants (a node's server or peer
// certificate, the healthcheck client) gets only its TLS session and
// Status, and the healthcheck client etcd's /health as well.
func Prove(ctx context.Context, inv *pki.Inventory, want State) []Proof {
	var out []Proof
	for _, t := range inv.Targets {
		if _, err := os.Lstat(t.KeyPath()); errors.Is(err, fs.ErrNotExist) {
			// Adopted without its key: nothing to present.
			out = append(out, Proof{Target: t.ID, User: t.CommonName, Skipped: true})
			continue
		}
		out = append(out, proveOne(ctx, inv.Spec, t, want.Roles[RoleFor(t.CommonName)]))
	}
	return out
}

// proveOne is Prove for one certificate.
func proveOne(ctx context.Context, s *cluster.Spec, t pki.Target, grants []Grant) Proof {
	p := Proof{Target: t.ID, User: t.CommonName}
	cfg, err := probe.TLSConfig(t.CAPath(), t.CertPath(), t.KeyPath())
	if err != nil {
		p.Err = err
		return p
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.ClientEndpoints(), TLS: cfg, DialTimeout: proofTimeout, Logger: zap.NewNop()})
	if err != nil {
		p.Err = fmt.Errorf("etcd client: %w", err)
		return p
	}
	defer cli.Close()
	var did []string
	for _, g := range grants {
		for _, o := range opsFor(g) {
			if err := o.run(ctx, cli); err != nil {
				p.Err = fmt.Errorf("%s, which its grant %s allows: %w", o.what, g, err)
				return p
			}
			did = append(did, o.what)
		}
	}
	if len(grants) == 0 {
		o := statusOp()
		if err := o.run(ctx, cli); err != nil {
			p.Err = fmt.Errorf("%s: %w", o.what, err)
			return p
		}
		did = append(did, o.what)
	}
	if t.Kind.Name == ca.KindHealthcheck.Name {
		if err := health(ctx, s, cfg); err != nil {
			p.Err = err
			return p
		}
		if err := endpointHealth(ctx, cli); err != nil {
			p.Err = err
			return p
		}
		did = append(did, "GET /health on every member", "etcdctl endpoint health's read")
	}
	refuse := readOp(outside(grants), false)
	err = refuse.run(ctx, cli)
	switch {
	case err == nil:
		p.Err = fmt.Errorf("%s went through: the certificate reads more than the spec grants", refuse.what)
	case !errors.Is(err, rpctypes.ErrPermissionDenied) && !strings.Contains(err.Error(), "permission denied"):
		p.Err = fmt.Errorf("%s: %w (want permission denied)", refuse.what, err)
	}
	p.Permitted, p.Refused = strings.Join(did, ", "), refuse.what
	return p
}

// op is one request a proof makes.
type op struct {
	what string
	run  func(context.Context, *clientv3.Client) error
}

// opsFor are the requests that show grant g in effect.
func opsFor(g Grant) []op {
	var out []op
	if g.Access == cluster.AccessRead || g.Access == cluster.AccessReadWrite {
		out = append(out, readOp(g.Key, g.RangeEnd != ""))
	}
	if g.Access == cluster.AccessWrite || g.Access == cluster.AccessReadWrite {
		k := g.Key
		if g.RangeEnd != "" {
			k += ProofKey
		}
		out = append(out, writeOp(k))
	}
	return out
}

// readOp reads key (the first key under it for a prefix), keys only.
func readOp(key string, prefix bool) op {
	opts := []clientv3.OpOption{clientv3.WithKeysOnly(), clientv3.WithLimit(1)}
	what := fmt.Sprintf("read key %q", key)
	if prefix {
		opts, what = append(opts, clientv3.WithPrefix()), fmt.Sprintf("read prefix %q", key)
	}
	return op{what: what, run: func(ctx context.Context, cli *clientv3.Client) error {
		ctx, cancel := context.WithTimeout(ctx, proofTimeout)
		defer cancel()
		_, err := cli.Get(ctx, key, opts...)
		return err
	}}
}

// writeOp proves write access to key without writing it: etcd checks a
// transaction's permissions on both branches before it runs either, and
// a transaction without comparisons runs its empty success branch, so
// the put in the failure branch is authorised and never applied (and an
// empty transaction does not move the revision).
func writeOp(key string) op {
	return op{what: fmt.Sprintf("write key %q (a put in a branch that never runs)", key), run: func(ctx context.Context, cli *clientv3.Client) error {
		ctx, cancel := context.WithTimeout(ctx, proofTimeout)
		defer cancel()
		_, err := cli.Txn(ctx).Else(clientv3.OpPut(key, "")).Commit()
		return err
	}}
}

// statusOp is the maintenance Status call: etcd asks only for a user
// name (any CN), so it shows the certificate accepted at the handshake.
func statusOp() op {
	return op{what: "status", run: func(ctx context.Context, cli *clientv3.Client) error {
		ctx, cancel := context.WithTimeout(ctx, proofTimeout)
		defer cancel()
		eps := cli.Endpoints()
		_, err := cli.Status(ctx, eps[0])
		return err
	}}
}

// outside is a key none of grants lets a client read: a Secret's path
// when no read grant reaches it, else a key no printable grant can
// cover.
func outside(grants []Grant) string {
	for _, k := range []string{cluster.APIServerPrefix + "secrets/" + ProofKey, ProofKey} {
		covered := false
		for _, g := range grants {
			if g.Access == cluster.AccessWrite {
				continue
			}
			in := k == g.Key || (g.RangeEnd != "" && k >= g.Key && k < g.RangeEnd)
			covered = covered || in
		}
		if !covered {
			return k
		}
	}
	return "\x00" + ProofKey
}

// health asks every member's /health with cfg's certificate, as a
// kubeadm liveness probe does.
func health(ctx context.Context, s *cluster.Spec, cfg *tls.Config) error {
	hc := &http.Client{Timeout: proofTimeout, Transport: &http.Transport{TLSClientConfig: cfg.Clone()}}
	defer hc.CloseIdleConnections()
	for _, ep := range s.ClientEndpoints() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s/health: %w", ep, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
			return fmt.Errorf("GET %s/health: %d %s", ep, resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	return nil
}

// endpointHealth is what `etcdctl endpoint health` asks: a linearizable
// read of the key "health", where permission denied still means the
// read went through consensus (etcd checks the permission after the
// read index), so etcdctl counts it healthy.
func endpointHealth(ctx context.Context, cli *clientv3.Client) error {
	ctx, cancel := context.WithTimeout(ctx, proofTimeout)
	defer cancel()
	if _, err := cli.Get(ctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		return fmt.Errorf("etcdctl endpoint health's read of \"health\": %w", err)
	}
	return nil
}
