package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// ProofTimeout bounds step (5). A member reloads its pair at every
// handshake, so the proof passes at the first try on a serving member;
// the time is for a member that is restarting or electing a leader under
// load, which a renewal must not be blamed for.
const ProofTimeout = 20 * time.Second

// Prove shows the host's pairs, as they are on disk now, in effect on
// the wire (fresh handshakes, never a resumed session) and returns what
// it saw in words. For a node: its client port serves its server serial
// and answers a linearizable read with its healthcheck client
// certificate, its peer port serves its peer serial, and another
// member's peer port accepts its peer certificate (what it presents when
// it dials its peers). For a client: a linearizable read through the
// etcd client with its pair. It retries until ProofTimeout.
func (a *Agent) Prove(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ProofTimeout)
	defer cancel()
	for {
		var proof string
		var err error
		if a.Bundle.Node {
			proof, err = a.proveNode(ctx)
		} else {
			proof, err = a.proveClient(ctx)
		}
		if err == nil {
			return proof, nil
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(runner.PollInterval * 5):
		}
	}
}

// target is the host's certificate of kind k.
func (a *Agent) target(k ca.Kind) (pki.Target, bool) {
	for _, t := range a.Targets {
		if t.Kind.Name == k.Name {
			return t, true
		}
	}
	return pki.Target{}, false
}

// diskSerial is the serial of t's certificate on disk, and a TLS
// configuration presenting its pair and trusting its bundle's ca.crt.
func diskSerial(t pki.Target) (string, *tls.Config, error) {
	cfg, err := probe.TLSConfig(t.CAPath(), t.CertPath(), t.KeyPath())
	if err != nil {
		return "", nil, err
	}
	return certx.Serial(cfg.Certificates[0].Leaf), cfg, nil
}

func (a *Agent) proveNode(ctx context.Context) (string, error) {
	n, ok := a.node()
	if !ok {
		return "", fmt.Errorf("node %s is not in the spec", a.Bundle.Owner)
	}
	serverT, _ := a.target(ca.KindServer)
	peerT, _ := a.target(ca.KindPeer)
	hcT, _ := a.target(ca.KindHealthcheck)
	wantServer, _, err := diskSerial(serverT)
	if err != nil {
		return "", err
	}
	wantPeer, peerCfg, err := diskSerial(peerT)
	if err != nil {
		return "", err
	}
	_, hcCfg, err := diskSerial(hcT)
	if err != nil {
		return "", err
	}
	h := probe.Health(ctx, []string{n.ClientURLs[0]}, hcCfg, runner.ProbeTimeout)
	me := h.Endpoints[0]
	switch {
	case me.ServerCert == nil:
		return "", fmt.Errorf("client port %s: %w", me.Endpoint, me.Err())
	case me.ServerCert.Serial != wantServer:
		return "", fmt.Errorf("client port %s serves serial %s, want %s", me.Addr, me.ServerCert.Serial, wantServer)
	case !me.Healthy:
		return "", fmt.Errorf("client port %s: the healthcheck client certificate got no linearizable read: %w", me.Addr, me.Err())
	}
	peerAddr, err := runner.PeerAddr(n)
	if err != nil {
		return "", err
	}
	got, err := runner.ServingSerial(ctx, peerAddr, peerCfg)
	switch {
	case err != nil:
		return "", fmt.Errorf("peer port %s: %w", peerAddr, err)
	case got != wantPeer:
		return "", fmt.Errorf("peer port %s serves serial %s, want %s", peerAddr, got, wantPeer)
	}
	by, err := a.acceptedByPeer(ctx, peerCfg)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("client port serves %s and reads, peer port serves %s, %s", pki.ShortSerial(wantServer), pki.ShortSerial(wantPeer), by), nil
}

// acceptedByPeer shows the node's peer certificate accepted as a client
// certificate by another member's peer port: the first, in spec order,
// that accepts it (a member that is down is not the certificate's
// fault). A one-member cluster has nobody to ask.
func (a *Agent) acceptedByPeer(ctx context.Context, peerCfg *tls.Config) (string, error) {
	var refused []string
	for _, m := range a.Spec.Nodes {
		if m.Name == a.Bundle.Owner {
			continue
		}
		addr, err := runner.PeerAddr(m)
		if err != nil {
			return "", err
		}
		if err := runner.AcceptedAsClient(ctx, addr, peerCfg); err != nil {
			refused = append(refused, fmt.Sprintf("%s (%s): %v", m.Name, addr, err))
			continue
		}
		return "its peer cert accepted by " + m.Name, nil
	}
	if refused == nil {
		return "no other member to accept its peer cert", nil
	}
	return "", fmt.Errorf("no other member's peer port accepted its peer certificate: %s", strings.Join(refused, "; "))
}

func (a *Agent) node() (cluster.Node, bool) {
	for _, n := range a.Spec.Nodes {
		if n.Name == a.Bundle.Owner {
			return n, true
		}
	}
	return cluster.Node{}, false
}

// proveClient reads through the etcd client with the client's pair: a
// linearizable Get goes through consensus, so it proves the members
// accept the certificate and the cluster serves. Permission denied
// (etcd auth on, no read right on the key) went through consensus too,
// as etcdctl endpoint health counts it.
func (a *Agent) proveClient(ctx context.Context) (string, error) {
	t := a.Targets[0]
	serial, cfg, err := diskSerial(t)
	if err != nil {
		return "", err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: a.Spec.ClientEndpoints(), TLS: cfg, DialTimeout: runner.ProbeTimeout, Logger: zap.NewNop()})
	if err != nil {
		return "", fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*runner.ProbeTimeout)
	defer cancel()
	if _, err := cli.Get(rctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		return "", fmt.Errorf("linearizable read with certificate %s: %w", pki.ShortSerial(serial), err)
	}
	return fmt.Sprintf("a linearizable read succeeded with certificate %s", pki.ShortSerial(serial)), nil
}
