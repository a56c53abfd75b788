package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
	"github.com/etcdpki/etcdpki/pki"
)

// TestSpecChecksEveryPeerPort: with --spec every member's peer port is
// handshaken as a peer would, each passing with its serial; then etcd-2's
// peer certificate is replaced on disk by one without its IP (etcd loads
// it at the next handshake; the open peer connections go on): its peer
// port fails, named, as a SAN mismatch, while the cluster still serves.
func TestSpecChecksEveryPeerPort(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	rep, out, err := runVerify(t, pki.New(c.Spec), Options{})
	assertReport(t, rep, out, err, want{pass: true})
	for _, m := range c.Members {
		ch, ok := findCheck(rep, CheckPeerPort, m.Name+" "+m.PeerURL)
		if !ok || ch.Status != OK || !strings.Contains(ch.Reason, "accepted a client certificate from the CA") {
			t.Errorf("%s peer port: %+v", m.Name, ch)
		}
	}

	etcdCA := testpki.LoadCA(t, c.Paths.CACert(), c.Paths.CAKey())
	crt, key := etcdtest.NodePair(c.Paths, etcdtest.NodeName(2), "peer")
	cert := etcdCA.Leaf(t, testpki.LeafOptions{CN: etcdtest.NodeName(2), Hosts: []string{"10.0.0.99", "localhost"}, EKU: serverEKU})
	for dst, data := range map[string][]byte{key: testpki.KeyPEM(t, cert.PrivateKey), crt: testpki.CertPEM(cert.Certificate[0])} {
		tmp := filepath.Join(filepath.Dir(dst), ".swap-"+filepath.Base(dst))
		testpki.WriteFile(t, tmp, data, 0o600)
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
	}
	m := c.Member(etcdtest.NodeName(2))
	rep, out, err = runVerify(t, pki.New(c.Spec), Options{})
	assertReport(t, rep, out, err, want{check: CheckPeerPort, target: m.Name + " " + m.PeerURL, st: Fail, kind: probe.KindSANMismatch, reason: []string{"127.0.0.2"}})
}

func findCheck(r *Report, name, target string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name && c.Target == target {
			return c, true
		}
	}
	return Check{}, false
}
