package runner

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io/fs"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// metricsMode: node_exporter's textfile collector runs as another user
// and must be able to read the file.
const metricsMode fs.FileMode = 0o644

// WriteMetrics writes a Prometheus textfile (for node_exporter's textfile
// collector) with every certificate's expiry, whether it has already
// expired, and the rotation times. It
// replaces the file in one rename, as the collector requires.
func WriteMetrics(path string, inv *pki.Inventory, st *State, ok bool, now time.Time) error {
	var b bytes.Buffer
	b.WriteString("# HELP etcdpki_cert_expiry_timestamp_seconds When the certificate expires (Unix time).\n")
	b.WriteString("# TYPE etcdpki_cert_expiry_timestamp_seconds gauge\n")
	s := inv.Spec
	if c, err := ReadCert(inv.Paths.CACert()); err == nil {
		fmt.Fprintf(&b, "etcdpki_cert_expiry_timestamp_seconds{cluster=%q,cert=%q} %d\n", s.Name, "etcd-ca", c.NotAfter.Unix())
	}
	for _, t := range inv.Targets {
		c, err := ReadCert(t.CertPath())
		if err != nil && pki.Held(t) {
			// In use on its host with no pair here (adopt): its expiry
			// matters all the same.
			c, err = ReadCert(t.Held)
		}
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "etcdpki_cert_expiry_timestamp_seconds{cluster=%q,cert=%q} %d\n", s.Name, t.ID, c.NotAfter.Unix())
	}
	// A CA is due like a leaf (inside renew-before, or within a year of
	// its end), but rotate never replaces it: this is the alert that
	// someone must run etcdpki ca rotate.
	b.WriteString("# HELP etcdpki_ca_due Whether the etcd CA is due for replacement with etcdpki ca rotate (1) or not (0).\n")
	b.WriteString("# TYPE etcdpki_ca_due gauge\n")
	if c, err := ReadCert(inv.Paths.CACert()); err == nil {
		due := 0
		if _, ok := pki.CADue(c, s.Leaf.RenewBefore, now); ok {
			due = 1
		}
		fmt.Fprintf(&b, "etcdpki_ca_due{cluster=%q,cert=%q} %d\n", s.Name, "etcd-ca", due)
	}
	writeExpired(&b, inv, now)
	writeCRLMetrics(&b, inv, now)
	b.WriteString("# HELP etcdpki_rotate_last_success_timestamp_seconds When a rotation last ended with everything in effect (Unix time).\n")
	b.WriteString("# TYPE etcdpki_rotate_last_success_timestamp_seconds gauge\n")
	last := int64(0)
	if !st.LastSuccess.IsZero() {
		last = st.LastSuccess.Unix()
	}
	fmt.Fprintf(&b, "etcdpki_rotate_last_success_timestamp_seconds{cluster=%q} %d\n", s.Name, last)
	b.WriteString("# HELP etcdpki_rotate_last_run_success Whether the last rotation run succeeded (1) or failed (0).\n")
	b.WriteString("# TYPE etcdpki_rotate_last_run_success gauge\n")
	v := 0
	if ok {
		v = 1
	}
	fmt.Fprintf(&b, "etcdpki_rotate_last_run_success{cluster=%q} %d\n", s.Name, v)
	b.WriteString("# HELP etcdpki_rotate_last_run_timestamp_seconds When the last rotation run ended (Unix time).\n")
	b.WriteString("# TYPE etcdpki_rotate_last_run_timestamp_seconds gauge\n")
	fmt.Fprintf(&b, "etcdpki_rotate_last_run_timestamp_seconds{cluster=%q} %d\n", s.Name, now.Unix())
	return WriteTextfile(path, b.Bytes())
}

// WriteTextfile replaces the node_exporter textfile at path with data in
// one rename, as the collector requires (it must never read half a
// file), readable by the collector's user. rotate's metrics and the
// agent's go through it.
func WriteTextfile(path string, data []byte) error {
	if _, err := atomicdir.WriteFile(path, data, metricsMode); err != nil {
		return fmt.Errorf("write metrics file: %w", err)
	}
	return nil
}

// ReadCert reads the PEM certificate at path (a regular file).
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := regular.ReadFile(path, regular.MaxPEM)
	if err != nil {
		return nil, err
	}
	return ca.ParseCert(data)
}

// writeExpired writes, per certificate, whether it has already expired
// (1) or not (0), and how many have, so that an alert on expired
// certificates is a plain comparison and does not rely on a "time left"
// going negative (or on a scrape landing after the expiry timestamp).
func writeExpired(b *bytes.Buffer, inv *pki.Inventory, now time.Time) {
	s := inv.Spec
	b.WriteString("# HELP etcdpki_cert_expired Whether the certificate has already expired (1) or not (0).\n")
	b.WriteString("# TYPE etcdpki_cert_expired gauge\n")
	n := 0
	one := func(name, path string) {
		c, err := ReadCert(path)
		if err != nil {
			return
		}
		v := 0
		if now.After(c.NotAfter) {
			v = 1
			n++
		}
		fmt.Fprintf(b, "etcdpki_cert_expired{cluster=%q,cert=%q} %d\n", s.Name, name, v)
	}
	one("etcd-ca", inv.Paths.CACert())
	for _, t := range inv.Targets {
		one(t.ID, t.CertPath())
	}
	b.WriteString("# HELP etcdpki_certs_expired How many of the cluster's certificates (the CA included) have already expired.\n")
	b.WriteString("# TYPE etcdpki_certs_expired gauge\n")
	fmt.Fprintf(b, "etcdpki_certs_expired{cluster=%q} %d\n", s.Name, n)
}
