package verify

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// CheckExpired is the row that names what expired certificates mean for
// the cluster now, and the command that fixes it.
const CheckExpired = "expired-certificates"

// The states of a cluster with expired certificates, as verify and certs
// list name them. An established TLS connection is never verified again,
// so a cluster whose certificates expired keeps serving on the
// connections it had, until something reconnects; one whose members were
// restarted since cannot form a quorum.
const (
	// StateServing: expired, and a quorum still answers.
	StateServing = "expired, cluster still serving on open connections: run etcdpki rotate now"
	// StateDown: expired, and no quorum answers.
	StateDown = "expired and no quorum: etcdpki rotate --recover"
	// StateCAExpired: the CA expired, so no new handshake can succeed
	// and nothing it signed can be renewed.
	StateCAExpired = "CA expired: no new TLS handshake can succeed; etcdpki rotate --recover"
)

// ExpiryState is what a cluster's expired certificates mean right now.
type ExpiryState struct {
	// Expired names the expired certificates ("etcd-ca" for the CA).
	Expired []string `json:"expired"`
	// CAExpired is true when the CA is among them.
	CAExpired bool `json:"caExpired"`
	// Quorum is whether a linearizable read succeeded on some member
	// (false when the CA expired: no probe can be made).
	Quorum bool `json:"quorum"`
	// State is one of StateServing, StateDown and StateCAExpired.
	State string `json:"state"`
}

// ExpiredState probes the cluster of s when some certificate in infos
// (from pki.List) has expired, and says which state it is in; nil when
// nothing has expired. The probe presents a client certificate minted in
// memory from the CA (the certificates on disk may all be expired, and
// etcd refuses an expired client certificate) and accepts expired server
// certificates from the CA, each endpoint within timeout.
func ExpiredState(ctx context.Context, inv *pki.Inventory, infos []pki.CertInfo, timeout time.Duration) *ExpiryState {
	st := &ExpiryState{}
	for _, in := range infos {
		if in.Status != pki.StatusExpired {
			continue
		}
		st.Expired = append(st.Expired, in.Name)
		if in.Target == nil {
			st.CAExpired = true
		}
	}
	if len(st.Expired) == 0 {
		return nil
	}
	if st.CAExpired {
		st.State = StateCAExpired
		return st
	}
	st.State = StateDown
	authority, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return st
	}
	pair, err := authority.ProbeClient(ca.ProbeValidity, time.Now())
	if err != nil {
		return st
	}
	cfg := probe.ClientConfig(probe.CertPool([]*x509.Certificate{authority.Cert}), &pair)
	h := probe.Health(ctx, inv.Spec.ClientEndpoints(), cfg, timeout, probe.TolerateExpired(nil))
	if st.Quorum = h.Quorum; st.Quorum {
		st.State = StateServing
	}
	return st
}

// check renders the state as a report row.
func (st *ExpiryState) check() Check {
	return Check{Name: CheckExpired, Target: "cluster", Status: Fail,
		Reason: fmt.Sprintf("%s (expired: %s)", st.State, strings.Join(st.Expired, ", "))}
}
