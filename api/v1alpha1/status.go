package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sort"
)

// Certificate returns the status entry of the certificate with the ID.
func (s *EtcdClusterStatus) Certificate(id string) (CertificateStatus, bool) {
	for _, c := range s.Certificates {
		if c.ID == id {
			return c, true
		}
	}
	return CertificateStatus{}, false
}

// Observe merges one observation into the status. An entry is replaced
// only by an observation proven later than it was, so that a slow probe
// that started before an agent's switch never writes back the old serial
// over the agent's report. RenewedAt is only ever moved forward.
func (s *EtcdClusterStatus) Observe(c CertificateStatus) {
	for i, old := range s.Certificates {
		if old.ID != c.ID {
			continue
		}
		if old.ProvenAt != nil && (c.ProvenAt == nil || c.ProvenAt.Before(old.ProvenAt)) {
			if later(c.RenewedAt, old.RenewedAt) {
				s.Certificates[i].RenewedAt = c.RenewedAt
			}
			return
		}
		if !later(c.RenewedAt, old.RenewedAt) {
			c.RenewedAt = old.RenewedAt
		}
		s.Certificates[i] = c
		return
	}
	s.Certificates = append(s.Certificates, c)
	sort.Slice(s.Certificates, func(i, j int) bool { return s.Certificates[i].ID < s.Certificates[j].ID })
}

// later says a is set and after b (or b is unset).
func later(a, b *metav1.Time) bool {
	return a != nil && (b == nil || b.Before(a))
}
