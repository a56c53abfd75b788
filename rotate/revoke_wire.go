package rotate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/internal/probe"
)

// PortVerdict is one port's verdict on a revoked certificate, with the
// control: a certificate from the same CA with a serial that is not
// revoked, presented over a fresh handshake at the same moment, which the
// port must accept, so that the refusal is the CRL's and not a port that
// refuses everyone.
type PortVerdict struct {
	Member  string
	Port    string // "client 127.0.0.1:2379" or "peer 127.0.0.1:2380"
	Revoked probe.Verdict
	Control probe.Verdict
	Err     error
}

// refusedEverywhere presents revoked and control on every member's client
// and peer port, all at once.
func refusedEverywhere(ctx context.Context, ports []memberPort, roots *x509.CertPool, revoked, control tls.Certificate) []PortVerdict {
	out := make([]PortVerdict, len(ports))
	var wg sync.WaitGroup
	for i, p := range ports {
		out[i] = PortVerdict{Member: p.member, Port: p.kind + " " + p.addr}
		wg.Go(func() {
			var cerr error
			var inner sync.WaitGroup
			inner.Go(func() { out[i].Control, cerr = probe.Present(ctx, p.addr, roots, control, probeTimeout) })
			v, err := probe.Present(ctx, p.addr, roots, revoked, probeTimeout)
			inner.Wait()
			out[i].Revoked = v
			out[i].Err = errors.Join(err, cerr)
		})
	}
	wg.Wait()
	return out
}

// memberPort is one listening port of a member.
type memberPort struct {
	member, kind, addr string
}

// ports lists every member's client and peer port, in spec order.
func (c *etcdCluster) ports() ([]memberPort, error) {
	var out []memberPort
	for _, n := range c.spec.Nodes {
		_, caddr, err := probe.ParseEndpoint(n.ClientURLs[0])
		if err != nil {
			return nil, err
		}
		_, paddr, err := probe.ParseEndpoint(n.PeerURLs[0])
		if err != nil {
			return nil, err
		}
		out = append(out, memberPort{n.Name, "client", caddr}, memberPort{n.Name, "peer", paddr})
	}
	return out, nil
}

// verdictProblem is why a port's verdict is not a proof of refusal, "" if
// it is one.
func verdictProblem(v PortVerdict) string {
	switch {
	case v.Err != nil:
		return v.Err.Error()
	case !v.Control.Accepted:
		return "it refused the control certificate too (" + v.Control.How + "): the refusal cannot be told from a port that refuses everyone"
	case v.Revoked.Accepted:
		return "it accepted the revoked certificate (" + v.Revoked.How + "): the member does not enforce the CRL; " +
			"etcd reads a CRL only from --client-crl-file/--peer-crl-file or ETCD_CLIENT_CRL_FILE/ETCD_PEER_CRL_FILE, never from --config-file: start it from etcd.env"
	}
	return ""
}

// waitRefused presents the certificates until every port refuses the
// revoked one and accepts the control, or until timeout: a deploy command
// that copies the CRL asynchronously gets a moment. It returns the last
// verdicts and how long it took.
func waitRefused(ctx context.Context, ports []memberPort, roots *x509.CertPool, revoked, control tls.Certificate, timeout time.Duration) ([]PortVerdict, time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		vs := refusedEverywhere(ctx, ports, roots, revoked, control)
		var bad []string
		for _, v := range vs {
			if p := verdictProblem(v); p != "" {
				bad = append(bad, fmt.Sprintf("%s %s: %s", v.Member, v.Port, p))
			}
		}
		if len(bad) == 0 {
			return vs, time.Since(start), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return vs, time.Since(start), errors.New(strings.Join(bad, "; "))
		}
		time.Sleep(pollInterval / 4)
	}
}
