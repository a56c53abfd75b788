package member

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// removedSerials are the serials of every certificate this CA issued to
// the node name that is still valid at now: each of its bundle's pairs
// (server, peer and the healthcheck client: the host keeps every key it
// was given), the pairs of its bundle that a renewal replaced (kept in
// PKI/backup), and what `etcdpki issue` wrote into PKI/issued (and its
// backups) for that host: a certificate with the node's name, or one that
// names one of the node's own addresses (one no node of others, the
// remaining spec, also has). A certificate issued with --out
// outside the PKI directory is not known here and is not found.
func removedSerials(paths pki.Paths, others *cluster.Spec, name string, now time.Time) ([]string, error) {
	cas, err := pki.ReadCAs(paths.CACert())
	if err != nil {
		return nil, err
	}
	var out []string
	add := func(c *x509.Certificate) {
		if s := certx.Serial(c); now.Before(c.NotAfter) && signedByAny(c, cas) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	// The bundle first, in catalogue order: the step's line lists them.
	var own []*x509.Certificate
	for _, k := range ca.Catalogue() {
		if !k.PerNode {
			continue
		}
		if c, err := runner.ReadCert(filepath.Join(paths.NodeCertDir(name), k.BaseName+pki.CertExt)); err == nil {
			add(c)
			own = append(own, c)
		}
	}
	// An address another node also has (a shared DNS name) names that
	// node too: what names it is not this host's alone.
	addrs := slices.DeleteFunc(nodeAddresses(own), func(a string) bool {
		return slices.ContainsFunc(others.Nodes, func(n cluster.Node) bool {
			return slices.ContainsFunc(n.ServerSANs(), func(h string) bool { return strings.EqualFold(h, a) })
		})
	})
	nodeDir := filepath.Join("nodes", name) + string(filepath.Separator)
	// The bundle of an earlier removal of a node of that name
	// (issue.ArchiveBundle), revoked then only in part by older versions.
	archived := regexp.MustCompile(`^member-` + regexp.QuoteMeta(name) + `-\d{8}T\d{6}Z(-\d+)?/`)
	for _, root := range []string{paths.Backups(), filepath.Join(paths.PKI, "issued")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, pki.CertExt) || filepath.Base(path) == pki.CAFile {
				return nil
			}
			c, err := runner.ReadCert(path)
			if err != nil {
				return nil // not a certificate: nothing to revoke
			}
			// In PKI/backup: the node's own pairs by where they were
			// kept; what issue wrote (in PKI/issued, or its backups
			// there) by what it names.
			rel, _ := filepath.Rel(root, path)
			sep := string(filepath.Separator)
			inBackup := root == paths.Backups()
			ownBundle := inBackup && (strings.Contains(sep+rel, sep+nodeDir) || archived.MatchString(rel))
			fromIssue := !inBackup || strings.Contains(sep+rel, sep+"issued"+sep)
			if ownBundle || fromIssue && (c.Subject.CommonName == name || namesAny(c, addrs)) {
				add(c)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nodeAddresses are the addresses the node's own certificates name, less
// the loopback names every server certificate carries (localhost,
// 127.0.0.1, ::1): those name every host, not this one.
func nodeAddresses(cs []*x509.Certificate) []string {
	var out []string
	for _, c := range cs {
		for _, ip := range c.IPAddresses {
			if !ip.Equal(net.IPv4(127, 0, 0, 1)) && !ip.Equal(net.IPv6loopback) {
				out = append(out, ip.String())
			}
		}
		for _, d := range c.DNSNames {
			if !strings.EqualFold(d, "localhost") {
				out = append(out, strings.ToLower(d))
			}
		}
	}
	return out
}

// namesAny says whether c names one of addrs.
func namesAny(c *x509.Certificate, addrs []string) bool {
	for _, ip := range c.IPAddresses {
		if slices.Contains(addrs, ip.String()) {
			return true
		}
	}
	for _, d := range c.DNSNames {
		if slices.Contains(addrs, strings.ToLower(d)) {
			return true
		}
	}
	return false
}

func signedByAny(c *x509.Certificate, cas []*x509.Certificate) bool {
	for _, a := range cas {
		if c.CheckSignatureFrom(a) == nil {
			return true
		}
	}
	return false
}
