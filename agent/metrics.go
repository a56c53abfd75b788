package agent

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"crypto/x509"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// RunState is what the agent's textfile reports beyond the certificates
// on disk: how its runs went and whether it can reach the apiserver.
type RunState struct {
	// LastSuccess is when a run last ended with nothing due left
	// (zero: never).
	LastSuccess time.Time
	// LastRun is when the last run ended, and LastRunOK whether it
	// succeeded.
	LastRun   time.Time
	LastRunOK bool
	// APIServerReachable is false while the agent cannot reach the
	// Kubernetes apiserver: it renews nothing then, and keeps serving
	// the pairs it has.
	APIServerReachable bool
}

// WriteMetrics writes the host's node_exporter textfile: rotate's
// certificate metrics (names and meaning as runner.WriteMetrics writes
// them) for the certificates of this host's bundle, and the agent's own
// run and apiserver gauges. Every series carries the owner, so a node's
// and a client's agents on one host never write the same series.
func (a *Agent) WriteMetrics(path string, st RunState, now time.Time) error {
	return WriteMetrics(path, a.Spec.Name, a.Bundle.Owner, a.Host, st, now)
}

// WriteMetrics is Agent.WriteMetrics for an agent that may not know its
// host yet (h nil: it never reached the apiserver to read the spec),
// which then writes its own gauges only.
func WriteMetrics(path, clusterName, owner string, h *Host, st RunState, now time.Time) error {
	var b bytes.Buffer
	lbl := fmt.Sprintf("cluster=%q,owner=%q", clusterName, owner)
	if h != nil {
		h.writeCertMetrics(&b, lbl, now)
	}
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s{%s} %d\n", name, help, name, name, lbl, v)
	}
	gauge("etcdpki_agent_last_success_timestamp_seconds", "When an agent run last ended with every due certificate renewed and proven (Unix time).", unix(st.LastSuccess))
	gauge("etcdpki_agent_last_run_success", "Whether the agent's last run succeeded (1) or failed (0).", bit(st.LastRunOK))
	gauge("etcdpki_agent_last_run_timestamp_seconds", "When the agent's last run ended (Unix time).", unix(st.LastRun))
	gauge("etcdpki_agent_apiserver_reachable", "Whether the agent reaches the Kubernetes apiserver (1) or not (0): while it does not, nothing is renewed.", bit(st.APIServerReachable))
	return runner.WriteTextfile(path, b.Bytes())
}

// writeCertMetrics writes rotate's certificate metrics for the pairs
// and CRL of the host's bundle.
func (h *Host) writeCertMetrics(b *bytes.Buffer, lbl string, now time.Time) {
	type named struct {
		name     string
		notAfter time.Time
	}
	var certs []named
	if cas, err := pki.BundleCAs(h.Bundle.CADir); err == nil && len(cas) > 0 {
		// During a CA rotation the bundle trusts two: the one ending
		// first is the one to watch.
		c := slices.MinFunc(cas, func(x, y *x509.Certificate) int { return x.NotAfter.Compare(y.NotAfter) })
		certs = append(certs, named{"etcd-ca", c.NotAfter})
	}
	for _, t := range h.Targets {
		if c, err := runner.ReadCert(t.CertPath()); err == nil {
			certs = append(certs, named{t.ID, c.NotAfter})
		}
	}
	b.WriteString("# HELP etcdpki_cert_expiry_timestamp_seconds When the certificate expires (Unix time).\n")
	b.WriteString("# TYPE etcdpki_cert_expiry_timestamp_seconds gauge\n")
	for _, c := range certs {
		fmt.Fprintf(b, "etcdpki_cert_expiry_timestamp_seconds{%s,cert=%q} %d\n", lbl, c.name, c.notAfter.Unix())
	}
	b.WriteString("# HELP etcdpki_cert_expired Whether the certificate has already expired (1) or not (0).\n")
	b.WriteString("# TYPE etcdpki_cert_expired gauge\n")
	expired := 0
	for _, c := range certs {
		fmt.Fprintf(b, "etcdpki_cert_expired{%s,cert=%q} %d\n", lbl, c.name, bit(now.After(c.notAfter)))
		if now.After(c.notAfter) {
			expired++
		}
	}
	b.WriteString("# HELP etcdpki_certs_expired How many of the cluster's certificates (the CA included) have already expired.\n")
	b.WriteString("# TYPE etcdpki_certs_expired gauge\n")
	fmt.Fprintf(b, "etcdpki_certs_expired{%s} %d\n", lbl, expired)
	h.writeCRLMetrics(b, lbl, now)
}

// writeCRLMetrics reports the bundle's CRL, as rotate reports the CA's.
func (h *Host) writeCRLMetrics(b *bytes.Buffer, lbl string, now time.Time) {
	data, err := pki.ReadStored(h.Bundle.CADir, pki.CRLFile)
	if err != nil {
		return
	}
	l, err := pki.ParseCRL(data)
	if err != nil {
		return
	}
	b.WriteString("# HELP etcdpki_crl_next_update_seconds Seconds until the CRL's nextUpdate (negative once past it).\n")
	b.WriteString("# TYPE etcdpki_crl_next_update_seconds gauge\n")
	fmt.Fprintf(b, "etcdpki_crl_next_update_seconds{%s} %d\n", lbl, int64(l.NextUpdate.Sub(now).Seconds()))
	b.WriteString("# HELP etcdpki_crl_revoked How many serials the CRL revokes.\n")
	b.WriteString("# TYPE etcdpki_crl_revoked gauge\n")
	fmt.Fprintf(b, "etcdpki_crl_revoked{%s} %d\n", lbl, len(l.RevokedCertificateEntries))
}

func bit(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
