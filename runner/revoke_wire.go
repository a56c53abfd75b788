package runner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
)

// PortVerdict is one port's verdict on a revoked certificate, with the
// control: the presented certificate's twin (ca.Twin: the same subject,
// SANs, usages and validity, another serial and key), presented over a
// fresh handshake at the same moment, which the port must accept, so that
// the refusal is the CRL's and not a port that refuses everyone, nor one
// that refuses the certificate for something else about it (etcd's peer
// port refuses a client certificate whose SANs do not name the address it
// is dialled from).
type PortVerdict struct {
	Member string
	Port   string // "client 127.0.0.1:2379" or "peer 127.0.0.1:2380"
	// Presented says what was presented as the revoked certificate: the
	// revoked certificate itself, or a probe minted with its serial.
	Presented string
	Revoked   probe.Verdict
	Control   probe.Verdict
	Err       error
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
			inner.Go(func() { out[i].Control, cerr = probe.Present(ctx, p.addr, roots, control, ProbeTimeout) })
			v, err := probe.Present(ctx, p.addr, roots, revoked, ProbeTimeout)
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
func (c *Cluster) ports() ([]memberPort, error) {
	var out []memberPort
	for _, n := range c.Spec.Nodes {
		caddr, err := ClientAddr(n)
		if err != nil {
			return nil, err
		}
		paddr, err := PeerAddr(n)
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
		return "it refused the control certificate, its twin, too (" + v.Control.How + "): the refusal cannot be told from a port that refuses everyone"
	case v.Revoked.Accepted:
		return "it accepted the revoked certificate (" + v.Revoked.How + "): the member does not enforce the CRL; " +
			"etcd reads a CRL only from --client-crl-file/--peer-crl-file or ETCD_CLIENT_CRL_FILE/ETCD_PEER_CRL_FILE, never from --config-file: start it from etcd.env"
	}
	return ""
}

// waitRefused presents the item's certificate and its control until
// every port refuses the certificate and accepts the control, or until
// timeout: a deploy command that copies the CRL asynchronously gets a
// moment. A port
// that refuses the revoked certificate's twin shows that it refuses the
// certificate for more than its serial, so that certificate proves
// nothing there: the item falls back to a probe minted with the serial
// (no SANs) and its twin. It sets the last verdicts and how long it took.
func waitRefused(ctx context.Context, ports []memberPort, roots *x509.CertPool, authority *ca.CA, it *proofItem, timeout time.Duration) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		it.vs = refusedEverywhere(ctx, ports, roots, it.pair, it.control)
		it.took = time.Since(start)
		if why := twinRefused(it.vs); why != "" && !it.probe {
			p, err := serialProbe(it.serial, authority)
			if err != nil {
				it.err = err
				return
			}
			p.how = fmt.Sprintf("%s, without SANs; %s, proves nothing: %s", p.how, it.how, why)
			it.presented = p
			continue
		}
		var bad []string
		for i, v := range it.vs {
			it.vs[i].Presented = it.how
			if p := verdictProblem(v); p != "" {
				bad = append(bad, fmt.Sprintf("%s %s: %s", v.Member, v.Port, p))
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			it.err = errors.New(strings.Join(bad, "; "))
			return
		}
		time.Sleep(PollInterval / 4)
	}
}

// twinRefused says which port refused the control, "" if none did (a
// port that could not be reached refused nothing).
func twinRefused(vs []PortVerdict) string {
	for _, v := range vs {
		// A refusal always says how; an error leaves the verdict empty.
		if !v.Control.Accepted && v.Control.How != "" {
			return fmt.Sprintf("%s %s refused its twin too (%s)", v.Member, v.Port, v.Control.How)
		}
	}
	return ""
}
