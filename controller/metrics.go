package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The controller's own metrics, served beside controller-runtime's on
// --metrics-bind-address.
var (
	csrDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "etcdpki_controller_csr_decisions_total",
		Help: "CSRs answered by this replica, by cluster and decision: approved, signed, denied, failed (namespace and cluster empty for a CSR naming no known cluster).",
	}, []string{"namespace", "cluster", "decision"})
	memberProven = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "etcdpki_controller_member_proven",
		Help: "1 when the member's client and peer ports answered the last probe with a certificate from the CA, else 0.",
	}, []string{"namespace", "cluster", "member"})
)

func init() {
	metrics.Registry.MustRegister(csrDecisions, memberProven)
}

// countProofs sets each member's gauge from one probe.
func countProofs(ns, cluster string, proofs []MemberProof) {
	for _, p := range proofs {
		v := 1.0
		if p.Err != nil {
			v = 0
		}
		memberProven.WithLabelValues(ns, cluster, p.Node).Set(v)
	}
}

// Revocation metrics, by cluster.
var (
	revocationsPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "etcdpki_controller_revocations_pending",
		Help: "Spec revocations not yet enforced on every member.",
	}, []string{"namespace", "cluster"})
	revocationsEnforced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "etcdpki_controller_revocations_enforced_total",
		Help: "Revocations this replica proved refused on every member's client and peer port.",
	}, []string{"namespace", "cluster"})
)

func init() {
	metrics.Registry.MustRegister(revocationsPending, revocationsEnforced)
}

// decided counts one CSR decision for cl (nil: no known cluster).
func decided(cl interface {
	GetNamespace() string
	GetName() string
}, decision string) {
	ns, name := "", ""
	if cl != nil {
		ns, name = cl.GetNamespace(), cl.GetName()
	}
	csrDecisions.WithLabelValues(ns, name, decision).Inc()
}
