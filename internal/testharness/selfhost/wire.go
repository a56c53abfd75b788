package selfhost

import (
	"context"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// Serials are a member's server and peer certificate serials (hex, as
// pki prints them): on its client and peer ports, or in its bundle.
type Serials struct {
	Server, Peer string
}

// ServedSerials reads, by node, what each member's client and peer ports
// serve over fresh handshakes, as rotate proves a renewal: with a probe
// client certificate minted in memory from the PKI's CA (never a pair
// from disk, which a renewal replaces), trusting the CA alone.
func (e *Env) ServedSerials(ctx context.Context) (map[string]Serials, error) {
	authority, err := pki.LoadCA(e.Inventory.Paths)
	if err != nil {
		return nil, err
	}
	pair, err := authority.ProbeClient(ca.ProbeValidity, time.Now())
	if err != nil {
		return nil, err
	}
	cfg := probe.ClientConfig(probe.CertPool([]*x509.Certificate{authority.Cert}), &pair)
	out := map[string]Serials{}
	for _, n := range e.Spec.Nodes {
		client, peer, err := e.Addrs(n.Name)
		if err != nil {
			return nil, err
		}
		var s Serials
		for _, p := range []struct {
			addr string
			into *string
		}{{client, &s.Server}, {peer, &s.Peer}} {
			dctx, cancel := context.WithTimeout(ctx, RequestTimeout)
			leaf, err := probe.ServingCert(dctx, p.addr, cfg)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("member %s: %s: %w", n.Name, p.addr, err)
			}
			*p.into = certx.Serial(leaf)
		}
		out[n.Name] = s
	}
	return out, nil
}

// BundleSerials reads, by node, the serials of the server and peer
// certificates in each node's bundle: what the member serves at its next
// handshake.
func (e *Env) BundleSerials() (map[string]Serials, error) {
	out := map[string]Serials{}
	for _, n := range e.Spec.Nodes {
		var s Serials
		for _, k := range []struct {
			kind string
			into *string
		}{{ca.KindServer.Name, &s.Server}, {ca.KindPeer.Name, &s.Peer}} {
			serial, err := e.TargetSerial(n.Name + "/" + k.kind)
			if err != nil {
				return nil, err
			}
			*k.into = serial
		}
		out[n.Name] = s
	}
	return out, nil
}

// TargetSerial is the serial of the certificate of a pki target ID
// (etcd-node-1/etcd-server, apiserver-etcd-client) in its bundle.
func (e *Env) TargetSerial(id string) (string, error) {
	tg, ok := e.Inventory.Target(id)
	if !ok {
		return "", fmt.Errorf("no target %s in the inventory", id)
	}
	certPEM, _, err := pki.ReadTargetPair(tg)
	if err != nil {
		return "", fmt.Errorf("%s: %w", id, err)
	}
	c, err := ca.ParseCert(certPEM)
	if err != nil {
		return "", fmt.Errorf("%s: %w", id, err)
	}
	return certx.Serial(c), nil
}

// CheckServed fails t unless every member serves, on both ports, the
// certificates in its bundle, and returns what they serve.
func (e *Env) CheckServed(t testing.TB) map[string]Serials {
	t.Helper()
	served, err := e.ServedSerials(context.Background())
	if err != nil {
		t.Fatalf("selfhost: served serials: %v", err)
	}
	files, err := e.BundleSerials()
	if err != nil {
		t.Fatalf("selfhost: bundle serials: %v", err)
	}
	for node, want := range files {
		if got := served[node]; got != want {
			t.Errorf("member %s serves server %s and peer %s, its bundle holds server %s and peer %s", node, got.Server, got.Peer, want.Server, want.Peer)
		}
	}
	return served
}

// LeaseHolder is the holder of the controller's leader-election Lease
// (v1alpha1.LeaseName) in namespace ns, "" when it has none.
func LeaseHolder(ctx context.Context, c client.Client, ns string) (string, error) {
	var l coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.LeaseName}, &l); err != nil {
		return "", fmt.Errorf("lease %s/%s: %w", ns, v1alpha1.LeaseName, err)
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// LeaseHolder is LeaseHolder with the admin client.
func (e *Env) LeaseHolder(ctx context.Context, ns string) (string, error) {
	return LeaseHolder(ctx, e.Kube.Client, ns)
}
