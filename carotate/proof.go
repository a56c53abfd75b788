package carotate

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// probeRoots trusts both CAs: a member serves a leaf of either while the
// rotation runs; the probe is about what the member accepts.
func (cr *caRun) probeRoots() *x509.CertPool {
	return probe.CertPool([]*x509.Certificate{cr.rot.Old.Cert, cr.rot.Next.Cert})
}

// proveTrust shows on the wire that member n trusts what stage wants it to
// trust, with fresh handshakes on its client and peer ports presenting
// short-lived probe certificates: in trust-both one from the new CA must
// be accepted; in finish one from the new CA accepted and one from the old
// CA refused.
func (cr *caRun) proveTrust(ctx context.Context, n cluster.Node, stage string) ([]string, error) {
	now := cr.r.Cfg.Now()
	newPair, err := cr.rot.Next.ProbeClient(ca.ProbeValidity, now)
	if err != nil {
		return nil, err
	}
	roots := cr.probeRoots()
	newCfg := probe.ClientConfig(roots, &newPair)
	clientAddr, err := runner.ClientAddr(n)
	if err != nil {
		return nil, err
	}
	peerAddr, err := runner.PeerAddr(n)
	if err != nil {
		return nil, err
	}
	var shown []string
	for _, port := range []struct{ name, addr string }{{"client port", clientAddr}, {"peer port", peerAddr}} {
		if err := runner.AcceptedAsClient(ctx, port.addr, newCfg); err != nil {
			return nil, &runner.ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf(
				"refused a probe client certificate from the new CA (serial %s): %w; the member does not trust the new CA, so its restart did not load the new ca.crt "+
					"(check that the deploy copied the bundle to nodes[].dir and that its etcd.conf.yml's trusted-ca-file is that ca.crt), then run etcdpki ca rotate again",
				pki.ShortSerial(certx.Serial(cr.rot.Next.Cert)), err)}
		}
		shown = append(shown, port.name+" "+port.addr+" accepts the new CA")
	}
	if stage != pki.CAStageFinish {
		return shown, nil
	}
	oldPair, err := cr.rot.Old.ProbeClient(ca.ProbeValidity, now)
	if err != nil {
		return nil, err
	}
	oldCfg := probe.ClientConfig(roots, &oldPair)
	for _, port := range []struct{ name, addr string }{{"client port", clientAddr}, {"peer port", peerAddr}} {
		err := runner.AcceptedAsClient(ctx, port.addr, oldCfg)
		var pe *probe.Error
		switch {
		case err == nil:
			return nil, &runner.ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf(
				"accepted a probe client certificate from the old CA (serial %s): the member still trusts it, so its restart did not load the new ca.crt; "+
					"check the deploy, then run etcdpki ca rotate again", pki.ShortSerial(certx.Serial(cr.rot.Old.Cert)))}
		case !errors.As(err, &pe) || pe.Kind != probe.KindClientCertRejected:
			return nil, &runner.ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf("probe with a certificate from the old CA: %w", err)}
		}
		shown = append(shown, port.name+" "+port.addr+" refuses the old CA")
	}
	return shown, nil
}
