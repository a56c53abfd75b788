package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/agent"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/crashpoint"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// testSigner signs what a CSR asks for with the test cluster's CA, with
// the usages of the target's kind: the signer's part, test-only. edit,
// when set, changes the certificate before it is signed (a signer that
// gets it wrong).
func testSigner(t *testing.T, authority *ca.CA, validity time.Duration, edit func(*x509.Certificate)) agent.Sign {
	t.Helper()
	return func(ctx context.Context, tg pki.Target, csrPEM []byte) ([]byte, error) {
		return signCSR(authority, tg.Kind.Usages, validity, csrPEM, edit)
	}
}

// signCSR is the test CA signing what a CSR asks for, with usages, for
// validity (the spec's, as the controller signs): the signer's part,
// test-only.
func signCSR(authority *ca.CA, usages []x509.ExtKeyUsage, validity time.Duration, csrPEM []byte, edit func(*x509.Certificate)) ([]byte, error) {
	key, err := certx.ParseKey(authority.KeyPEM)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(csrPEM)
	if b == nil {
		return nil, errors.New("no PEM CSR")
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: req.Subject, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: usages}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, authority.Cert, req.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

type fixture struct {
	c         *etcdtest.Cluster
	authority *ca.CA
	log       bytes.Buffer
}

func (f *fixture) agent(t *testing.T, owner, dir string, sign agent.Sign) *agent.Agent {
	t.Helper()
	h, err := agent.NewHost(f.c.Inventory(), owner, dir)
	if err != nil {
		t.Fatal(err)
	}
	if sign == nil {
		sign = testSigner(t, f.authority, f.c.Spec.Leaf.Validity, nil)
	}
	return &agent.Agent{Host: h, Sign: sign, Log: runner.NewLogger(&f.log)}
}

func serialOn(t *testing.T, tg pki.Target) string {
	t.Helper()
	certPEM, _, err := pki.ReadTargetPair(tg)
	if err != nil || certPEM == nil {
		t.Fatalf("%s: %v", tg.ID, err)
	}
	c, err := ca.ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certx.Serial(c)
}

func all(pki.Target) (bool, string) { return true, "requested by the test" }

// TestAgent runs agents against a real 3-member cluster: each subtest
// starts from what the one before left.
func TestAgent(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	authority, err := pki.LoadCA(c.Paths)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, authority: authority}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", f.log.String())
		}
	})
	node := c.Spec.Nodes[0].Name
	nodeDir := c.Paths.NodeDir(node)
	t.Run("RenewsANodesPairsAndProvesThemOnTheWire", func(t *testing.T) { renewsANode(t, f, node, nodeDir) })
	t.Run("RenewsAClientAndReadsWithIt", func(t *testing.T) { renewsAClient(t, f) })
	t.Run("DueByRenewBefore", func(t *testing.T) { dueByRenewBefore(t, f, node, nodeDir) })
	t.Run("RefusesWhatMustNotBeInstalled", func(t *testing.T) { refuses(t, f, node, nodeDir) })
	t.Run("KilledBeforeTheSwitchConverges", func(t *testing.T) { killedBeforeTheSwitch(t, f, node, nodeDir) })
	t.Run("WritesItsTextfile", func(t *testing.T) { writesItsTextfile(t, f, node, nodeDir) })
}

// writesItsTextfile: the expiry of every pair on disk, the bundle's CRL,
// and the apiserver gauge, each series with the owner.
func writesItsTextfile(t *testing.T, f *fixture, node, dir string) {
	a := f.agent(t, node, dir, nil)
	path := filepath.Join(t.TempDir(), "etcdpki-agent.prom")
	now := time.Now()
	if err := a.WriteMetrics(path, agent.RunState{LastRun: now, LastRunOK: true, LastSuccess: now}, now); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	lbl := fmt.Sprintf(`cluster=%q,owner=%q`, f.c.Spec.Name, node)
	want := []string{
		fmt.Sprintf("etcdpki_agent_apiserver_reachable{%s} 0", lbl),
		fmt.Sprintf("etcdpki_agent_last_run_success{%s} 1", lbl),
		fmt.Sprintf("etcdpki_certs_expired{%s} 0", lbl),
		fmt.Sprintf("etcdpki_crl_revoked{%s} 1", lbl),
	}
	for _, tg := range a.Targets {
		certPEM, _, _ := pki.ReadTargetPair(tg)
		c, _ := ca.ParseCert(certPEM)
		want = append(want, fmt.Sprintf("etcdpki_cert_expiry_timestamp_seconds{%s,cert=%q} %d", lbl, tg.ID, c.NotAfter.Unix()))
	}
	for _, w := range want {
		if !strings.Contains(text, w+"\n") {
			t.Errorf("textfile lacks %q:\n%s", w, text)
		}
	}
}

func renewsANode(t *testing.T, f *fixture, node, dir string) {
	a := f.agent(t, node, dir, nil)
	pids := map[string]int{}
	for _, m := range f.c.Members {
		pids[m.Name] = m.PID()
	}
	ps := a.Pending(all)
	if len(ps) != 3 {
		t.Fatalf("pending %d targets, want the node's 3", len(ps))
	}
	var reported []string
	rs, err := a.RenewPending(context.Background(), ps, func(r *agent.Renewal) error {
		reported = append(reported, r.Target.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || len(reported) != 3 {
		t.Fatalf("renewed %d, reported %v", len(rs), reported)
	}
	for _, r := range rs {
		if r.NewSerial == r.OldSerial || r.NewSerial != serialOn(t, r.Target) || r.ProvenAt.Before(r.RenewedAt) {
			t.Errorf("%s: %s -> %s, on disk %s, renewed %v proven %v", r.Target.ID, r.OldSerial, r.NewSerial, serialOn(t, r.Target), r.RenewedAt, r.ProvenAt)
		}
		if info, err := os.Stat(r.Target.KeyPath()); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: key %v mode %v", r.Target.ID, err, info.Mode())
		}
	}
	// On the wire, independently of the agent's own proof.
	server, peer := rs[0], rs[1]
	cfg, err := probe.TLSConfig(peer.Target.CAPath(), peer.Target.CertPath(), peer.Target.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	n := f.c.Spec.Nodes[0]
	for _, w := range []struct {
		url, want string
	}{{n.ClientURLs[0], server.NewSerial}, {n.PeerURLs[0], peer.NewSerial}} {
		_, addr, _ := probe.ParseEndpoint(w.url)
		got, err := runner.ServingSerial(context.Background(), addr, cfg)
		if err != nil || got != w.want {
			t.Errorf("%s serves %s (%v), want %s", addr, got, err, w.want)
		}
	}
	for _, m := range f.c.Members {
		if m.PID() != pids[m.Name] {
			t.Errorf("%s restarted (pid %d -> %d): a renewal restarts nothing", m.Name, pids[m.Name], m.PID())
		}
	}
	if !strings.Contains(f.log.String(), "its peer cert accepted by "+f.c.Spec.Nodes[1].Name) {
		t.Errorf("no proof that another member accepted the peer cert in the log:\n%s", f.log.String())
	}
}

func renewsAClient(t *testing.T, f *fixture) {
	a := f.agent(t, cluster.ClientAPIServer, f.c.Paths.APIServerDir(), nil)
	tg := a.Targets[0]
	old := serialOn(t, tg)
	r, err := a.Renew(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if r.NewSerial == old || serialOn(t, tg) != r.NewSerial || !strings.Contains(r.Proof, "linearizable read") {
		t.Fatalf("client renewal %+v", r)
	}
	// The pair the apiserver would load reads from every member.
	out, err := f.c.Etcdctl(context.Background(), tg.CertPath(), tg.KeyPath(), "get", "--consistency=l", "x")
	if err != nil {
		t.Fatalf("etcdctl with the renewed pair: %v\n%s", err, out)
	}
}

func dueByRenewBefore(t *testing.T, f *fixture, node, dir string) {
	a := f.agent(t, node, dir, nil)
	tg := a.Targets[0]
	certPEM, _, _ := pki.ReadTargetPair(tg)
	c, _ := ca.ParseCert(certPEM)
	at := c.NotAfter.Add(-f.c.Spec.Leaf.RenewBefore)
	a.Now = func() time.Time { return at.Add(-time.Second) }
	if due, why := a.Due(tg); due {
		t.Errorf("due a second before notAfter - renewBefore: %s", why)
	}
	if ps := a.Pending(nil); len(ps) != 0 {
		t.Errorf("pending without a request: %v", ps)
	}
	a.Now = func() time.Time { return at }
	if due, why := a.Due(tg); !due || !strings.Contains(why, "renew-before") {
		t.Errorf("not due at notAfter - renewBefore: %v %s", due, why)
	}
}

// refuses: a certificate that fails step (3) and a signer that fails
// leave the host directory byte for byte as it was.
func refuses(t *testing.T, f *fixture, node, dir string) {
	revokedSerial := big.NewInt(0x5eed)
	h, _ := agent.NewHost(f.c.Inventory(), node, dir)
	installed, _ := pki.ReadStored(h.Bundle.CADir, pki.CRLFile)
	l, err := pki.ParseCRL(installed)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := f.authority.SignCRL([]ca.Revocation{{Serial: revokedSerial, When: time.Now()}}, new(big.Int).Add(l.Number, big.NewInt(1)), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := issue.InstallCRL(h.Bundle, crl); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sign agent.Sign
		step string
		want string
	}{
		{"another member's SANs", testSigner(t, f.authority, f.c.Spec.Leaf.Validity, func(c *x509.Certificate) { c.DNSNames = append(c.DNSNames, "etcd-2.example") }), agent.StepCheck, "SANs"},
		{"a revoked serial", testSigner(t, f.authority, f.c.Spec.Leaf.Validity, func(c *x509.Certificate) { c.SerialNumber = revokedSerial }), agent.StepCheck, "is revoked"},
		{"a refused request", func(context.Context, pki.Target, []byte) ([]byte, error) {
			return nil, errors.New("denied: SAN 127.0.0.2 belongs to etcd-2")
		}, agent.StepSign, "denied"},
	} {
		before := tree(t, dir)
		a := f.agent(t, node, dir, c.sign)
		_, err := a.Renew(context.Background(), a.Targets[0])
		var se *agent.StepError
		if !errors.As(err, &se) || se.Step != c.step || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a %s failure saying %q", c.name, err, c.step, c.want)
		}
		if after := tree(t, dir); after != before {
			t.Errorf("%s: refused, but %s changed", c.name, dir)
		}
	}
}

// killedBeforeTheSwitch kills a renewal while it waits for its
// certificate, and then at every file-system step of the switch; each
// time the next run renews and proves, and no private key is left in the
// host directory but those that were in effect at some point.
func killedBeforeTheSwitch(t *testing.T, f *fixture, node, dir string) {
	a := f.agent(t, node, dir, nil)
	tg := a.Targets[1] // the peer pair: what the other members check
	installed := map[string]bool{}
	for k := range keysIn(t, dir) {
		installed[k] = true
	}
	inEffect := func() {
		_, k, err := pki.ReadTargetPair(tg)
		if err != nil {
			t.Fatal(err)
		}
		installed[string(bytes.TrimSpace(k))] = true
	}
	check := func(when string) {
		for k, path := range keysIn(t, dir) {
			if !installed[k] {
				t.Errorf("%s: %s holds a key that was never in effect", when, path)
			}
		}
		for _, p := range keyFiles(t, dir) {
			if info, _ := os.Stat(p); info.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s mode %04o", when, p, info.Mode().Perm())
			}
		}
	}
	// Killed while waiting: the key dies with the process.
	before := tree(t, dir)
	func() {
		defer func() { recover() }()
		k := f.agent(t, node, dir, func(context.Context, pki.Target, []byte) ([]byte, error) { panic("kill -9") })
		k.Renew(context.Background(), tg)
	}()
	if tree(t, dir) != before {
		t.Fatal("killed while waiting for its certificate, but the host directory changed")
	}
	for n := 1; ; n++ {
		k := f.agent(t, node, dir, nil)
		stopped := crashpoint.RunUntilStepIn(t, dir, n, func() error {
			_, err := k.Renew(context.Background(), tg)
			return err
		})
		inEffect()
		if stopped == "" {
			t.Logf("the switch of %s took %d file-system steps; killed at each", tg.ID, n-1)
			check("after the last run")
			if n < 3 {
				t.Fatalf("the switch took %d steps: the hook sees none of its writes", n-1)
			}
			return
		}
		if _, err := a.Renew(context.Background(), tg); err != nil {
			t.Fatalf("killed at step %s: the next run: %v", stopped, err)
		}
		inEffect()
		check("killed at step " + stopped + ", then run again")
	}
}

// keysIn maps every private key PEM found in a regular file under dir
// to a file holding it.
func keysIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range keyFiles(t, dir) {
		data, _ := os.ReadFile(p)
		out[string(bytes.TrimSpace(data))] = p
	}
	return out
}

// keyFiles are the regular files under dir that hold a private key,
// whatever their name.
func keyFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tree records every path, mode, link and content under dir.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := os.Lstat(p)
		fmt.Fprintf(&b, "%s %v", p, info.Mode())
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		} else if info.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", data)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDueAtNeverBeforeTwoThirdsOfItsLife: renew-before decides for a
// certificate longer than it, but one a signer made shorter is not due
// the moment it arrives (which would renew it in a loop).
func TestDueAtNeverBeforeTwoThirdsOfItsLife(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		life, renewBefore, want time.Duration
	}{
		{365 * 24 * time.Hour, 30 * 24 * time.Hour, 335 * 24 * time.Hour},
		{24 * time.Hour, 30 * 24 * time.Hour, 16 * time.Hour},
		{90 * time.Minute, time.Hour, time.Hour},
	} {
		cert := &x509.Certificate{NotBefore: start, NotAfter: start.Add(c.life)}
		if got := agent.DueAt(cert, c.renewBefore).Sub(start); got != c.want {
			t.Errorf("life %s, renew-before %s: due after %s, want %s", c.life, c.renewBefore, got, c.want)
		}
	}
}
