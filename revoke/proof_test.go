package revoke_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/livetest"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/revoke"
	"github.com/etcdpki/etcdpki/runner"
)

// TestRevokeProofSANs: the proof of a revocation counts a refusal only
// when the presented certificate's twin (the same but for serial and key)
// is accepted on that port. etcd's peer port refuses a client certificate
// whose IP SANs do not name the address it is dialled from (127.0.0.1
// here), revoked or not: a server certificate naming only 127.0.0.9 is
// refused there before any CRL, so presenting it proves nothing, and the
// proof presents a probe minted with its serial instead. A certificate
// whose SANs name 127.0.0.1 is presented itself.
func TestRevokeProofSANs(t *testing.T) {
	c := livetest.RevokeCluster(t)
	t.Run("SANsNotNamingTheProberFallBackToTheSerialProbe", func(t *testing.T) { testProofWrongSANs(t, c) })
	t.Run("SANsNamingTheProberPresentTheCertificateItself", func(t *testing.T) { testProofRightSANs(t, c) })
}

// presentEach presents pair on every port and returns the verdicts by
// address, failing on any port that neither accepted nor refused.
func presentEach(t *testing.T, c *etcdtest.Cluster, pair tls.Certificate) map[string]probe.Verdict {
	t.Helper()
	out := map[string]probe.Verdict{}
	pool := livetest.CaPool(t, c)
	for _, addr := range livetest.AllPorts(t, c.Spec) {
		v, err := probe.Present(context.Background(), addr, pool, pair, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		out[addr] = v
	}
	return out
}

// revokeSerialOf revokes pair's serial with etcdpki certs revoke --serial
// and returns the ports' verdicts and the output.
func revokeSerialOf(t *testing.T, c *etcdtest.Cluster, pair tls.Certificate) ([]runner.PortVerdict, string) {
	t.Helper()
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := revoke.Revoke(context.Background(), pki.New(c.Spec), revoke.Options{Serials: []string{certx.Serial(leaf)}, Out: &out})
	t.Logf("revoke output:\n%s", out.String())
	if err != nil {
		t.Fatalf("revoke --serial: %v", err)
	}
	if len(res.Verdicts) != 2*len(c.Spec.Nodes) {
		t.Fatalf("%d verdicts, want one per client and peer port (%d)", len(res.Verdicts), 2*len(c.Spec.Nodes))
	}
	for _, v := range res.Verdicts {
		if v.Err != nil || v.Revoked.Accepted || !v.Control.Accepted {
			t.Errorf("%s %s: %+v, want the revoked refused and its control accepted", v.Member, v.Port, v)
		}
	}
	return res.Verdicts, out.String()
}

func testProofWrongSANs(t *testing.T, c *etcdtest.Cluster) {
	pair := livetest.IssuedPair(t, c, "server", "etcd-gw-9", "127.0.0.9")
	authority, err := pki.LoadCA(c.Paths)
	if err != nil {
		t.Fatal(err)
	}
	twin, err := authority.Twin(pair.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	// Before any revocation, the false positive the twin guards against:
	// every peer port refuses the certificate for its SANs, and its twin
	// too; the client ports, which check no client SANs, accept both.
	before, twinBefore := presentEach(t, c, pair), presentEach(t, c, twin)
	for _, n := range c.Spec.Nodes {
		_, client, _ := probe.ParseEndpoint(n.ClientURLs[0])
		_, peer, _ := probe.ParseEndpoint(n.PeerURLs[0])
		if !before[client].Accepted || !twinBefore[client].Accepted {
			t.Errorf("client port %s: %+v, twin %+v, want both accepted (etcd checks no client SANs there)", client, before[client], twinBefore[client])
		}
		if before[peer].Accepted || twinBefore[peer].Accepted {
			t.Errorf("peer port %s: %+v, twin %+v, want both refused for their SANs", peer, before[peer], twinBefore[peer])
		}
	}
	vs, out := revokeSerialOf(t, c, pair)
	for _, v := range vs {
		if !strings.HasPrefix(v.Presented, "a probe certificate minted with its serial, without SANs") || !strings.Contains(v.Presented, "proves nothing: ") {
			t.Errorf("%s %s: presented %q, want the serial probe, saying why", v.Member, v.Port, v.Presented)
		}
	}
	if !regexp.MustCompile(`proves nothing: etcd-\d peer 127\.0\.0\.\d:\d+ refused its twin too \(`).MatchString(out) {
		t.Error("the output does not say that a peer port refused the twin, and so the certificate itself was not presented")
	}
	// Independently of the proof: the client ports, which accepted it
	// before, refuse it now.
	for addr, v := range presentEach(t, c, pair) {
		if v.Accepted {
			t.Errorf("%s accepts the revoked certificate: %+v", addr, v)
		}
	}
}

func testProofRightSANs(t *testing.T, c *etcdtest.Cluster) {
	pair := livetest.IssuedPair(t, c, "server", "etcd-gw-1", "127.0.0.9", "127.0.0.1")
	for addr, v := range presentEach(t, c, pair) {
		if !v.Accepted {
			t.Fatalf("%s refuses a certificate naming 127.0.0.1 before its revocation: %+v", addr, v)
		}
	}
	vs, _ := revokeSerialOf(t, c, pair)
	for _, v := range vs {
		if !strings.HasPrefix(v.Presented, "the revoked certificate itself, issued/etcd-gw-1/") {
			t.Errorf("%s %s: presented %q, want the revoked certificate itself", v.Member, v.Port, v.Presented)
		}
	}
}
