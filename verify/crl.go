package verify

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// CRL check names.
const (
	// CheckCRL is the CA's CRL (its freshness) and each node bundle's
	// copy, when its etcd.env names one: missing or unparsable, the
	// member refuses every connection.
	CheckCRL = "crl"
	// CheckCRLEnforced is a member refusing a revoked serial, over fresh
	// handshakes on its client and peer port.
	CheckCRLEnforced = "crl-enforced"
	// CheckCRLGRPCListener warns of an etcd whose gRPC-only listener
	// (listen-client-http-urls set) ignores the CRL.
	CheckCRLGRPCListener = "crl-grpc-listener"
)

// crlChecks are the CRL's checks for a spec: the files, then, when the
// CRL revokes anything and the cluster answered, each member refusing one
// revoked serial on both ports (a probe certificate minted with that
// serial: etcd compares serials only), and a warning for members whose
// etcd ignores the CRL on a gRPC-only listener.
func crlChecks(ctx context.Context, inv *pki.Inventory, h *probe.Cluster, timeout time.Duration, now time.Time) []Check {
	s, p := inv.Spec, inv.Paths
	var out []Check
	crl, err := pki.LoadCRL(p)
	switch {
	case err != nil:
		out = append(out, Check{Name: CheckCRL, Target: p.CRL(), Status: Fail, Reason: err.Error()})
	case crl == nil:
		out = append(out, Check{Name: CheckCRL, Target: p.CRL(), Status: Warn, Reason: "no CRL: nothing can be revoked until etcdpki init or rotate writes one"})
	case !now.Before(crl.NextUpdate):
		out = append(out, Check{Name: CheckCRL, Target: p.CRL(), Status: Warn, Reason: fmt.Sprintf("past its next update (%s): run etcdpki rotate, which signs it again", crl.NextUpdate.UTC().Format(time.RFC3339))})
	default:
		out = append(out, Check{Name: CheckCRL, Target: p.CRL(), Status: OK, Reason: fmt.Sprintf("number %v, %d revoked, next update %s", crl.Number, len(crl.Revoked), crl.NextUpdate.UTC().Format(time.RFC3339))})
	}
	for _, n := range s.Nodes {
		if prob := p.BundleCRLProblem(n.Name); prob != "" {
			out = append(out, Check{Name: CheckCRL, Target: p.NodeCRL(n.Name), Status: Fail, Reason: prob})
		}
	}
	out = append(out, grpcListenerChecks(inv, h)...)
	if crl == nil || len(crl.Revoked) == 0 || h == nil {
		return out
	}
	return append(out, enforcedChecks(ctx, inv, h, crl.Revoked[len(crl.Revoked)-1], timeout)...)
}

// enforcedChecks present a probe certificate with a revoked serial, and a
// control with a fresh one, on every member's client and peer port.
func enforcedChecks(ctx context.Context, inv *pki.Inventory, h *probe.Cluster, r pki.Revoked, timeout time.Duration) []Check {
	authority, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return []Check{{Name: CheckCRLEnforced, Target: "cluster", Status: Fail, Reason: err.Error()}}
	}
	serial, _ := new(big.Int).SetString(r.Serial, 16)
	revoked, err := authority.ProbeWithSerial(serial, time.Now())
	if err != nil {
		return []Check{{Name: CheckCRLEnforced, Target: "cluster", Status: Fail, Reason: err.Error()}}
	}
	control, err := authority.ProbeClient(time.Hour, time.Now())
	if err != nil {
		return []Check{{Name: CheckCRLEnforced, Target: "cluster", Status: Fail, Reason: err.Error()}}
	}
	roots := []*x509.Certificate{authority.Cert}
	if next, err := pki.LoadNextCA(inv.Paths); err == nil && next != nil {
		roots = append(roots, next.Cert) // during a CA rotation members may serve either
	}
	pool := probe.CertPool(roots)
	var out []Check
	for _, n := range inv.Spec.Nodes {
		for _, u := range []struct{ kind, url string }{{"client", n.ClientURLs[0]}, {"peer", n.PeerURLs[0]}} {
			_, addr, err := probe.ParseEndpoint(u.url)
			if err != nil {
				continue
			}
			target := fmt.Sprintf("%s %s port %s", n.Name, u.kind, addr)
			c := Check{Name: CheckCRLEnforced, Target: target}
			if !memberAnswered(h, n.ClientURLs[0]) {
				c.Status, c.Reason = Skip, "not run: the member did not answer (see its endpoint checks)"
				out = append(out, c)
				continue
			}
			ctl, cerr := probe.Present(ctx, addr, pool, control, timeout)
			v, err := probe.Present(ctx, addr, pool, revoked, timeout)
			switch {
			case err != nil || cerr != nil:
				c.Status, c.Reason = Fail, fmt.Sprintf("could not tell: %v", firstErr(err, cerr))
			case !ctl.Accepted:
				c.Status, c.Reason = Fail, "refuses a fresh certificate of the CA too ("+ctl.How+")"
			case v.Accepted:
				c.Status, c.Reason = Fail, fmt.Sprintf("accepts revoked serial %s (%s): the member does not enforce the CRL; etcd reads CRLs only from flags or ETCD_* variables, never from --config-file: start it from etcd.env", pki.ShortSerial(r.Serial), v.How)
			default:
				c.Status, c.Reason = OK, fmt.Sprintf("refuses revoked serial %s (%s)", pki.ShortSerial(r.Serial), v.How)
			}
			out = append(out, c)
		}
	}
	return out
}

// memberAnswered reports whether the member at clientURL answered the health
// probe (verify's endpoints may be the spec's, or others given).
func memberAnswered(h *probe.Cluster, clientURL string) bool {
	_, addr, err := probe.ParseEndpoint(clientURL)
	if err != nil {
		return false
	}
	for _, r := range h.Endpoints {
		if r.Addr == addr {
			return r.Healthy
		}
	}
	return false
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// grpcListenerChecks warn for members whose config sets a gRPC-only
// listener (listen-client-http-urls) on an etcd from before 3.5.32 or
// 3.6.13, whose gRPC-only listener ignored the client CRL.
func grpcListenerChecks(inv *pki.Inventory, h *probe.Cluster) []Check {
	if h == nil {
		return nil
	}
	s, p := inv.Spec, inv.Paths
	var out []Check
	for _, n := range s.Nodes {
		v := memberVersion(h, n.ClientURLs[0])
		if v == "" || !grpcOnlyListener(p, n.Name) {
			continue
		}
		if crlOnGRPCListener(v) {
			continue
		}
		out = append(out, Check{Name: CheckCRLGRPCListener, Target: n.Name, Status: Warn,
			Reason: fmt.Sprintf("etcd %s ignores the CRL on the gRPC-only listener that listen-client-http-urls makes: upgrade to 3.5.32 / 3.6.13 or later", v)})
	}
	return out
}

// memberVersion is the etcd version the member at clientURL reported,
// "" if it did not answer.
func memberVersion(h *probe.Cluster, clientURL string) string {
	_, addr, err := probe.ParseEndpoint(clientURL)
	if err != nil {
		return ""
	}
	for _, r := range h.Endpoints {
		if r.Addr == addr && r.Status != nil {
			return r.Status.Version
		}
	}
	return ""
}

// grpcOnlyListener reports whether node's etcd.conf.yml or etcd.env sets
// listen-client-http-urls.
func grpcOnlyListener(p pki.Paths, node string) bool {
	if data, err := regular.ReadFile(p.NodeEnv(node), regular.MaxState); err == nil {
		if env, err := pki.ParseEnv(data); err == nil && env["ETCD_LISTEN_CLIENT_HTTP_URLS"] != "" {
			return true
		}
	}
	var m map[string]any
	if data, err := regular.ReadFile(p.NodeConfig(node), regular.MaxState); err == nil && yaml.Unmarshal(data, &m) == nil {
		if v, ok := m["listen-client-http-urls"].(string); ok && v != "" {
			return true
		}
	}
	return false
}

// crlOnGRPCListener reports whether an etcd version enforces the CRL on
// its gRPC-only listener: 3.5.32 and later 3.5s, 3.6.13 and later, 3.7+.
func crlOnGRPCListener(version string) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 3 {
		return false
	}
	var n [3]int
	for i, s := range parts {
		v, err := strconv.Atoi(strings.SplitN(s, "-", 2)[0])
		if err != nil {
			return false
		}
		n[i] = v
	}
	switch {
	case n[0] > 3 || n[0] == 3 && n[1] > 6:
		return true
	case n[0] == 3 && n[1] == 6:
		return n[2] >= 13
	case n[0] == 3 && n[1] == 5:
		return n[2] >= 32
	}
	return false
}
