package controller

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

func newTestCA(t *testing.T, cn string) *ca.CA {
	t.Helper()
	a, err := ca.Create(cluster.CA{CommonName: cn, Key: cluster.KeySpec{Algorithm: cluster.AlgECDSA, Size: 256}, Validity: 24 * time.Hour}, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestResignCRLKeepsTheEntriesAndRaisesTheNumber(t *testing.T) {
	a := newTestCA(t, "etcd-ca")
	signed := time.Now().Add(-40 * time.Minute)
	revoked := []ca.Revocation{{Serial: big.NewInt(0xabc), Reason: 1, When: signed.Add(-time.Hour)}, {Serial: big.NewInt(0xdef), Reason: 4, When: signed}}
	old, err := a.SignCRL(revoked, big.NewInt(7), time.Hour, signed)
	if err != nil {
		t.Fatal(err)
	}
	if der, why, err := ResignCRL(a, old, time.Hour, signed.Add(10*time.Minute)); der != nil || why != "" || err != nil {
		t.Fatalf("a CRL in the first half of its life was signed again (%q, %v)", why, err)
	}
	der, why, err := ResignCRL(a, old, time.Hour, time.Now())
	if err != nil || der == nil || why == "" {
		t.Fatalf("a CRL past half its life was not signed again: %v", err)
	}
	l, err := pki.ParseCRL(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckSignatureFrom(a.Cert); err != nil {
		t.Error(err)
	}
	if l.Number.Int64() != 8 {
		t.Errorf("CRL number %v, want 8", l.Number)
	}
	if len(l.RevokedCertificateEntries) != 2 {
		t.Fatalf("%d entries, want 2", len(l.RevokedCertificateEntries))
	}
	for i, e := range l.RevokedCertificateEntries {
		w := revoked[i]
		if e.SerialNumber.Cmp(w.Serial) != 0 || e.ReasonCode != w.Reason || !e.RevocationTime.Equal(w.When.UTC().Truncate(time.Second)) {
			t.Errorf("entry %d: %v %d %s, want %v %d %s", i, e.SerialNumber, e.ReasonCode, e.RevocationTime, w.Serial, w.Reason, w.When)
		}
	}
	if !l.NextUpdate.After(time.Now().Add(50 * time.Minute)) {
		t.Errorf("next update %s: not a new hour", l.NextUpdate)
	}
}

func TestResignCRLLeavesAnotherCAsAndAMissingCRL(t *testing.T) {
	a, other := newTestCA(t, "etcd-ca"), newTestCA(t, "other-ca")
	theirs, err := other.SignCRL(nil, big.NewInt(1), time.Minute, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if der, _, err := ResignCRL(a, theirs, time.Hour, time.Now()); der != nil || err == nil {
		t.Errorf("another CA's CRL: signed %v, err %v", der != nil, err)
	}
	if der, _, err := ResignCRL(a, nil, time.Hour, time.Now()); der != nil || !errors.Is(err, errNoCRL) {
		t.Errorf("no CRL: signed %v, err %v", der != nil, err)
	}
	if der, _, err := ResignCRL(a, []byte("junk"), time.Hour, time.Now()); der != nil || err == nil {
		t.Errorf("junk CRL: signed %v, err %v", der != nil, err)
	}
}
