package ca

import (
	"crypto/x509"
	"testing"
	"time"
)

// A probe certificate is a client certificate of this CA only, short-lived,
// and comes with its parsed leaf, ready for a tls.Config.
func TestProbeClientIsShortLivedAndChainsToItsCA(t *testing.T) {
	now := time.Now()
	a, other := newCA(t, 24*time.Hour), newCA(t, 24*time.Hour)
	pair, err := a.ProbeClient(ProbeValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		t.Fatal("no parsed leaf")
	}
	if leaf.Subject.CommonName != ProbeCommonName {
		t.Errorf("CN %q, want %q", leaf.Subject.CommonName, ProbeCommonName)
	}
	if got := leaf.NotAfter.Sub(now); got > ProbeValidity || got < ProbeValidity-2*time.Second {
		t.Errorf("lives %s after now, want %s", got, ProbeValidity)
	}
	if err := a.Verify(leaf, x509.ExtKeyUsageClientAuth, now); err != nil {
		t.Errorf("does not verify as a client of its CA: %v", err)
	}
	if err := a.Verify(leaf, x509.ExtKeyUsageServerAuth, now); err == nil {
		t.Error("verifies as a server certificate")
	}
	if err := other.Verify(leaf, x509.ExtKeyUsageClientAuth, now); err == nil {
		t.Error("verifies against another CA")
	}
	if err := a.Verify(leaf, x509.ExtKeyUsageClientAuth, now.Add(ProbeValidity+time.Minute)); err == nil {
		t.Error("still valid after its validity")
	}
}
