package rotate

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
	clientAddr, err := ClientAddr(n)
	if err != nil {
		return nil, err
	}
	peerAddr, err := PeerAddr(n)
	if err != nil {
		return nil, err
	}
	var shown []string
	for _, port := range []struct{ name, addr string }{{"client port", clientAddr}, {"peer port", peerAddr}} {
		if err := AcceptedAsClient(ctx, port.addr, newCfg); err != nil {
			return nil, &ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf(
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
		err := AcceptedAsClient(ctx, port.addr, oldCfg)
		var pe *probe.Error
		switch {
		case err == nil:
			return nil, &ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf(
				"accepted a probe client certificate from the old CA (serial %s): the member still trusts it, so its restart did not load the new ca.crt; "+
					"check the deploy, then run etcdpki ca rotate again", pki.ShortSerial(certx.Serial(cr.rot.Old.Cert)))}
		case !errors.As(err, &pe) || pe.Kind != probe.KindClientCertRejected:
			return nil, &ProofError{Member: n.Name, Port: port.name + " " + port.addr, Err: fmt.Errorf("probe with a certificate from the old CA: %w", err)}
		}
		shown = append(shown, port.name+" "+port.addr+" refuses the old CA")
	}
	return shown, nil
}

// probeAuthority says which CA signs the run's probe certificate and which
// CAs verify what the members serve, for every probe of rotate and ca
// rotate (see probeTLS). Outside a CA rotation it is the CA alone. During
// one the members serve leaves of either CA, so both verify; the probe is
// signed by the old CA until the files reach reissue, which starts only
// once every member is proven to trust the new one, and from then on by
// the new CA, which finish leaves as the only one the members accept.
func probeAuthority(inv *pki.Inventory) (*ca.CA, []*x509.Certificate, error) {
	old, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return nil, nil, err
	}
	if next, err := pki.LoadNextCA(inv.Paths); err != nil || next == nil {
		return old, []*x509.Certificate{old.Cert}, nil
	}
	rot, err := pki.ReadCARotation(inv)
	if err != nil {
		return nil, nil, err
	}
	roots := []*x509.Certificate{rot.Old.Cert, rot.Next.Cert}
	if pki.CAStageIndex(rot.Stage) >= pki.CAStageIndex(pki.CAStageReissue) {
		return rot.Next, roots, nil
	}
	return rot.Old, roots, nil
}
