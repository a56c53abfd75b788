// Package issue issues etcd's leaf certificates from the catalogue in
// package ca, for every node and client of a cluster spec, and writes the
// node and client bundles and the configuration files that use them.
package issue

import (
	"crypto/x509"
	"path/filepath"
	"sort"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
)

// Target is one concrete certificate of a cluster: a catalogue kind
// applied to a node or client.
type Target struct {
	// ID names the certificate on the command line and in output:
	// "etcd-node-1/etcd-server", "apiserver-etcd-client", "client/NAME".
	ID   string
	Kind ca.Kind
	// Node or client this certificate belongs to.
	Owner        string
	CommonName   string
	Organization []string
	// Hosts are the SANs the spec asks for (none for clients).
	Hosts []string
	// Dir is the atomic store holding the pair; CertName and KeyName are
	// the file names in it.
	Dir      string
	CertName string
	KeyName  string
	// CADir is the store that carries this bundle's ca.crt.
	CADir string
}

// CertPath and KeyPath are where the pair can be read.
func (t Target) CertPath() string { return filepath.Join(t.Dir, t.CertName) }

// KeyPath is the private key's path.
func (t Target) KeyPath() string { return filepath.Join(t.Dir, t.KeyName) }

// Usage is the extended key usage the certificate must verify for.
func (t Target) Usage() x509.ExtKeyUsage { return t.Kind.Usages[0] }

// Targets expands the catalogue over the spec: for each node its server,
// peer and healthcheck certificates, then the apiserver client and any
// extra clients.
func Targets(s *cluster.Spec) []Target {
	p := Paths{PKI: s.PKIDir}
	var ts []Target
	for _, n := range s.Nodes {
		for _, k := range []ca.Kind{ca.KindServer, ca.KindPeer, ca.KindHealthcheck} {
			t := Target{ID: n.Name + "/" + k.Name, Kind: k, Owner: n.Name, CommonName: n.Name,
				Dir: p.NodeCertDir(n.Name), CertName: k.BaseName + ".crt", KeyName: k.BaseName + ".key",
				CADir: p.NodeCertDir(n.Name)}
			if k.CommonName != "" {
				t.CommonName = k.CommonName
			}
			if k.ServerSANs {
				t.Hosts = n.ServerSANs()
			}
			ts = append(ts, t)
		}
	}
	for _, c := range s.Clients {
		switch c.Name {
		case cluster.ClientHealthcheck:
			// Lives in each node bundle, above.
		case cluster.ClientAPIServer:
			k := ca.KindAPIServer
			ts = append(ts, Target{ID: k.Name, Kind: k, Owner: c.Name, CommonName: k.CommonName,
				Dir: p.APIServerDir(), CertName: k.BaseName + ".crt", KeyName: k.BaseName + ".key",
				CADir: filepath.Dir(p.APIServerCA())})
		default:
			k := ca.KindClient
			ts = append(ts, Target{ID: "client/" + c.Name, Kind: k, Owner: c.Name, CommonName: c.CommonName,
				Organization: c.Organization, Dir: p.ClientDir(c.Name), CertName: c.Name + ".crt", KeyName: c.Name + ".key",
				CADir: filepath.Dir(p.ClientCA(c.Name))})
		}
	}
	return ts
}

// Select picks targets by ID, by owner (a node or client name: all of its
// certificates) or by catalogue kind name (that kind on every node).
// Unknown names are returned in missing.
func Select(all []Target, names []string) (picked []Target, missing []string) {
	want := map[string]bool{}
	for _, n := range names {
		hit := false
		for _, t := range all {
			if t.ID == n || t.Owner == n || t.Kind.Name == n {
				want[t.ID] = true
				hit = true
			}
		}
		if !hit {
			missing = append(missing, n)
		}
	}
	for _, t := range all {
		if want[t.ID] {
			picked = append(picked, t)
		}
	}
	return picked, missing
}

// IDs lists target IDs, sorted.
func IDs(ts []Target) []string {
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	sort.Strings(ids)
	return ids
}
