package controller

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

const testSpec = `name: etcd-test
local: true
nodes:
  - {name: etcd-node-1, ips: [127.0.0.1]}
  - {name: etcd-node-2, ips: [127.0.0.2], dns: [etcd-2.example]}
  - {name: etcd-node-3, ips: [127.0.0.3]}
clients:
  - name: kube-apiserver
  - name: healthcheck
  - {name: etcd-admin, organization: [ops]}
`

func testInventory(t *testing.T) *pki.Inventory {
	t.Helper()
	s, err := cluster.Parse([]byte(testSpec), "", cluster.Options{PKIDir: filepath.Join(t.TempDir(), "pki")})
	if err != nil {
		t.Fatal(err)
	}
	return pki.New(s)
}

// agentCSR is the request an honest agent makes for id: ca.NewCSR of the
// spec's request, and the target's usages.
func agentCSR(t *testing.T, inv *pki.Inventory, id string) CSR {
	t.Helper()
	tg, ok := inv.Target(id)
	if !ok {
		t.Fatalf("no target %s", id)
	}
	csrPEM, _, err := ca.NewCSR(tg.Request(inv.Spec.Leaf))
	if err != nil {
		t.Fatal(err)
	}
	user := "etcdpki:node:" + tg.Owner
	if !tg.OwnerNode {
		user = "etcdpki:client:" + tg.Owner
	}
	return CSR{Username: user, SignerName: v1alpha1.SignerFor(tg.Kind.Name), Usages: Usages(tg), Request: csrPEM, Target: id}
}

// forgedCSR is a request for CN with these SANs and key, made by hand.
func forgedCSR(t *testing.T, key crypto.Signer, cn string, ips ...string) []byte {
	t.Helper()
	tmpl := x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestMatchApprovesWhatTheSpecSays(t *testing.T) {
	inv := testInventory(t)
	a, err := ca.Create(cluster.CA{CommonName: "etcd-ca", Key: inv.Spec.CA.Key, Validity: 24 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range inv.Targets {
		t.Run(tg.ID, func(t *testing.T) {
			c := agentCSR(t, inv, tg.ID)
			for _, withTarget := range []bool{true, false} {
				if !withTarget {
					c.Target = ""
				}
				d := Match(inv, c)
				if d.Denied() || d.Target.ID != tg.ID {
					t.Fatalf("annotation %v: Match = %q for %q, want approved for %s", withTarget, d.Reason, d.Target.ID, tg.ID)
				}
			}
			d := Match(inv, c)
			certPEM, err := a.SignCSR(d.Request, c.Request)
			if err != nil {
				t.Fatal(err)
			}
			cert, _ := ca.ParseCert(certPEM)
			if err := a.Verify(cert, tg.Usage(), time.Now()); err != nil || cert.Subject.CommonName != tg.CommonName {
				t.Errorf("signed %q: %v", cert.Subject.CommonName, err)
			}
		})
	}
}

func TestMatchDeniesWithTheReason(t *testing.T) {
	inv := testInventory(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(id string, f func(*CSR)) CSR {
		c := agentCSR(t, inv, id)
		f(&c)
		return c
	}
	cases := []struct {
		name string
		csr  CSR
		want string
	}{
		{"not an agent", edit("etcd-node-1/etcd-server", func(c *CSR) { c.Username = "system:serviceaccount:default:x" }),
			"user system:serviceaccount:default:x is not an etcdpki agent identity"},
		{"empty node name", edit("etcd-node-1/etcd-server", func(c *CSR) { c.Username = "etcdpki:node:" }),
			"user etcdpki:node: is not an etcdpki agent identity"},
		{"unknown node", edit("etcd-node-1/etcd-server", func(c *CSR) { c.Username = "etcdpki:node:etcd-node-9" }),
			"node etcd-node-9 is not in the spec of cluster etcd-test"},
		{"unknown client", edit("apiserver-etcd-client", func(c *CSR) { c.Username = "etcdpki:client:nobody" }),
			"client nobody is not in the spec of cluster etcd-test"},
		{"a client's identity asks for a server certificate", edit("apiserver-etcd-client", func(c *CSR) { c.SignerName = v1alpha1.SignerServer }),
			"client kube-apiserver has no certificate from signer etcdpki.io/etcd-server"},
		{"a client with no certificate of its own", edit("apiserver-etcd-client", func(c *CSR) { c.Username = "etcdpki:client:healthcheck" }),
			"client healthcheck has no certificate from signer etcdpki.io/etcd-client"},
		{"unknown signer", edit("etcd-node-1/etcd-server", func(c *CSR) { c.SignerName = "example.com/other" }),
			"node etcd-node-1 has no certificate from signer example.com/other"},
		{"annotation disagrees", edit("etcd-node-1/etcd-server", func(c *CSR) { c.Target = "etcd-node-1/etcd-peer" }),
			"annotation etcdpki.io/target says etcd-node-1/etcd-peer, but etcdpki:node:etcd-node-1 with signer etcdpki.io/etcd-server asks for etcd-node-1/etcd-server"},
		{"annotation names another node", edit("etcd-node-1/etcd-server", func(c *CSR) { c.Target = "etcd-node-2/etcd-server" }),
			"annotation etcdpki.io/target says etcd-node-2/etcd-server, but etcdpki:node:etcd-node-1 with signer etcdpki.io/etcd-server asks for etcd-node-1/etcd-server"},
		{"usage the spec does not give", edit("apiserver-etcd-client", func(c *CSR) { c.Usages = append(c.Usages, "server auth") }),
			`usage "server auth" is not in the spec for apiserver-etcd-client (it gives digital signature, key encipherment, client auth)`},
		{"usage missing", edit("etcd-node-1/etcd-peer", func(c *CSR) { c.Usages = c.Usages[:3] }),
			`usage "client auth" is missing: the spec gives etcd-node-1/etcd-peer digital signature, key encipherment, server auth, client auth`},
		{"node 1 asks for node 2's SANs", edit("etcd-node-1/etcd-server", func(c *CSR) {
			c.Request = forgedCSR(t, ec, "etcd-node-1", "127.0.0.2", "127.0.0.1", "::1")
		}), "SAN 127.0.0.2 belongs to etcd-node-2, not etcd-node-1"},
		{"a client asks for a node's SAN", edit("apiserver-etcd-client", func(c *CSR) {
			c.Request = forgedCSR(t, ec, "kube-apiserver-etcd-client", "127.0.0.3")
		}), "SAN 127.0.0.3 belongs to etcd-node-3, not kube-apiserver"},
		{"a SAN nobody has", edit("etcd-node-1/etcd-server", func(c *CSR) {
			c.Request = forgedCSR(t, ec, "etcd-node-1", "10.9.9.9")
		}), "SAN 10.9.9.9 is not in the spec"},
		{"node 1 asks for node 2's name", edit("etcd-node-1/etcd-server", func(c *CSR) {
			c.Request = forgedCSR(t, ec, "etcd-node-2")
		}), "commonName etcd-node-2, the spec says etcd-node-1"},
		{"wrong key size", edit("apiserver-etcd-client", func(c *CSR) {
			c.Request = forgedCSR(t, rsaKey, "kube-apiserver-etcd-client")
		}), "key rsa-2048, the spec says ecdsa-256"},
		{"organization the spec does not give", edit("client/etcd-admin", func(c *CSR) {
			c.Request = forgedCSR(t, ec, "etcd-admin")
		}), "organization ops is missing (the spec gives it)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Match(inv, tc.csr)
			if d.Reason != tc.want {
				t.Errorf("reason\n got %q\nwant %q", d.Reason, tc.want)
			}
			if d.Target.ID != "" {
				t.Errorf("a denied CSR names target %s", d.Target.ID)
			}
		})
	}
}
