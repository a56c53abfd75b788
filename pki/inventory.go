package pki

import (
	"crypto/x509"
	"path/filepath"
	"slices"
	"sort"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// Target is one concrete certificate of a cluster: a catalogue kind
// applied to a node or client.
type Target struct {
	// ID names the certificate on the command line and in output:
	// "etcd-node-1/etcd-server", "apiserver-etcd-client", "client/NAME".
	ID   string
	Kind ca.Kind
	// Owner is the node or client this certificate belongs to; OwnerNode
	// says which.
	Owner        string
	OwnerNode    bool
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
	// Held is where adopt records the certificate when it is in use on
	// its host without its key in the PKI (see InspectHeld).
	Held string
}

// CertPath and KeyPath are where the pair can be read.
func (t Target) CertPath() string { return filepath.Join(t.Dir, t.CertName) }

// KeyPath is the private key's path.
func (t Target) KeyPath() string { return filepath.Join(t.Dir, t.KeyName) }

// Store is the atomic store holding the pair, named after its owner.
func (t Target) Store() atomicdir.Store { return atomicdir.Store{Dir: t.Dir, Name: t.Owner} }

// CAStore is the atomic store holding the bundle's CA file.
func (t Target) CAStore() atomicdir.Store { return atomicdir.Store{Dir: t.CADir, Name: t.Owner} }

// CAPath is the CA bundle this certificate's holder trusts.
func (t Target) CAPath() string { return filepath.Join(t.CADir, CAFile) }

// Usage is the extended key usage the certificate must verify for.
func (t Target) Usage() x509.ExtKeyUsage { return t.Kind.Usages[0] }

// Bundle is what is deployed to one node or client: its directory, and
// the CA file in it that says which CAs the holder trusts.
type Bundle struct {
	// Owner is the node or client; Node says which.
	Owner string
	Node  bool
	// Root is the directory a deploy template copies ({{.Bundle}}).
	Root string
	// CADir is the atomic store holding CAFile.
	CADir string
	// Targets are the IDs of the certificates in the bundle.
	Targets []string
}

// CAStore is the atomic store holding the bundle's CA file.
func (b Bundle) CAStore() atomicdir.Store { return atomicdir.Store{Dir: b.CADir, Name: b.Owner} }

// CAPath is the bundle's CA file. Which CAs it holds is read from the
// file with ReadCAs: during a CA rotation it holds the old and new CA.
func (b Bundle) CAPath() string { return filepath.Join(b.CADir, CAFile) }

// Inventory is a spec expanded: every certificate and bundle.
type Inventory struct {
	Spec    *cluster.Spec
	Paths   Paths
	Targets []Target
	Bundles []Bundle
}

// New expands the catalogue over the spec: for each node the PerNode
// kinds, then for each client the kind issued for it by name or, for any
// other client, the PerClient kind. A new kind of certificate is one
// catalogue entry.
func New(s *cluster.Spec) *Inventory {
	p := Paths{PKI: s.PKIDir}
	inv := &Inventory{Spec: s, Paths: p}
	cat := ca.Catalogue()
	for _, n := range s.Nodes {
		b := Bundle{Owner: n.Name, Node: true, Root: p.NodeDir(n.Name), CADir: p.NodeCertDir(n.Name)}
		for _, k := range cat {
			if !k.PerNode {
				continue
			}
			t := Target{ID: n.Name + "/" + k.Name, Kind: k, Owner: n.Name, OwnerNode: true, CommonName: n.Name,
				Dir: p.NodeCertDir(n.Name), CertName: k.BaseName + CertExt, KeyName: k.BaseName + KeyExt,
				CADir: b.CADir, Held: p.HeldCert(n.Name + "/" + k.Name)}
			if k.CommonName != "" {
				t.CommonName = k.CommonName
			}
			if k.ServerSANs {
				t.Hosts = n.ServerSANs()
			}
			inv.Targets = append(inv.Targets, t)
			b.Targets = append(b.Targets, t.ID)
		}
		inv.Bundles = append(inv.Bundles, b)
	}
	for _, c := range s.Clients {
		k, ok := clientKind(cat, c.Name)
		if !ok || k.PerNode {
			// No kind, or its certificate lives in each node bundle, above.
			continue
		}
		t := Target{Kind: k, Owner: c.Name, CommonName: c.CommonName, Organization: c.Organization}
		if k.CommonName != "" {
			t.CommonName = k.CommonName
		}
		base := k.BaseName
		if k.PerClient {
			t.ID = k.Name + "/" + c.Name
			base = c.Name
		} else {
			t.ID = k.Name
		}
		t.Dir = p.ClientBundle(c.Name)
		t.CertName, t.KeyName = base+CertExt, base+KeyExt
		t.CADir = filepath.Join(t.Dir, "etcd")
		t.Held = p.HeldCert(t.ID)
		inv.Targets = append(inv.Targets, t)
		inv.Bundles = append(inv.Bundles, Bundle{Owner: c.Name, Root: t.Dir, CADir: t.CADir, Targets: []string{t.ID}})
	}
	return inv
}

// clientKind is the kind issued for the named client: the one that names
// it, else the PerClient kind.
func clientKind(cat []ca.Kind, client string) (ca.Kind, bool) {
	for _, k := range cat {
		if k.Client == client {
			return k, true
		}
	}
	for _, k := range cat {
		if k.PerClient {
			return k, true
		}
	}
	return ca.Kind{}, false
}

// Bundle returns the bundle of a node or client.
func (inv *Inventory) Bundle(owner string) (Bundle, bool) {
	for _, b := range inv.Bundles {
		if b.Owner == owner {
			return b, true
		}
	}
	return Bundle{}, false
}

// Target returns the certificate with the given ID.
func (inv *Inventory) Target(id string) (Target, bool) {
	for _, t := range inv.Targets {
		if t.ID == id {
			return t, true
		}
	}
	return Target{}, false
}

// OnHost is where a file of the bundle lands on its host, when the
// bundle is deployed to hostDir (kubeadm's /etc/kubernetes/pki).
func (b Bundle) OnHost(hostDir, path string) string {
	rel, err := filepath.Rel(b.Root, path)
	if err != nil {
		return path
	}
	return filepath.Join(hostDir, rel)
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

// ShortSerial abbreviates a hex serial for one-line messages: its first
// 12 digits (enough to tell two apart), "(none)" when there is none.
func ShortSerial(serial string) string {
	switch {
	case serial == "":
		return "(none)"
	case len(serial) > 12:
		return serial[:12]
	}
	return serial
}

// Without is the inventory less the named nodes: the spec without them,
// and without their certificates and bundles. It is what New would
// expand from that spec (a node's entries are its own), derived instead
// of expanded again, so the inventory cmd built stays the one source.
func (inv *Inventory) Without(nodes ...string) *Inventory {
	gone := func(owner string, node bool) bool { return node && slices.Contains(nodes, owner) }
	s := *inv.Spec
	s.Nodes = slices.DeleteFunc(slices.Clone(s.Nodes), func(n cluster.Node) bool { return gone(n.Name, true) })
	out := &Inventory{Spec: &s, Paths: inv.Paths}
	for _, t := range inv.Targets {
		if !gone(t.Owner, t.OwnerNode) {
			out.Targets = append(out.Targets, t)
		}
	}
	for _, b := range inv.Bundles {
		if !gone(b.Owner, b.Node) {
			out.Bundles = append(out.Bundles, b)
		}
	}
	return out
}
