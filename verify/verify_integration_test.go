package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
	"github.com/etcdpki/etcdpki/pki"
)

var (
	serverEKU = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	clientEKU = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
)

// testTimeout keeps the black-holed cases short; healthy loopback members
// answer in milliseconds.
const testTimeout = 2 * time.Second

// want is what a scenario must produce.
type want struct {
	pass  bool
	check string     // a check that must be present with status
	st    Status     // ...this status
	kind  probe.Kind // ...and, for endpoint checks, this kind
	// target is the check's target ("" for any); reason must contain all
	// of these.
	target string
	reason []string
}

func runVerify(t *testing.T, inv *pki.Inventory, o Options) (*Report, string, error) {
	t.Helper()
	var out bytes.Buffer
	if o.Timeout == 0 {
		o.Timeout = testTimeout
	}
	rep, err := Run(context.Background(), inv, o, &out)
	t.Logf("verify output:\n%s", out.String())
	return rep, out.String(), err
}

func assertReport(t *testing.T, rep *Report, out string, err error, w want) {
	t.Helper()
	if w.pass && err != nil {
		t.Fatalf("verify failed, want pass: %v", err)
	}
	if !w.pass && !errors.Is(err, ErrChecksFailed) {
		t.Fatalf("verify error %v, want ErrChecksFailed (exit 1)", err)
	}
	if rep.Passed != w.pass {
		t.Errorf("Passed = %v, want %v", rep.Passed, w.pass)
	}
	if w.check == "" {
		return
	}
	for _, c := range rep.Checks {
		if c.Name != w.check || (w.target != "" && c.Target != w.target) || c.Status != w.st || (w.kind != "" && c.Kind != w.kind) {
			continue
		}
		for _, r := range w.reason {
			if !strings.Contains(c.Reason, r) {
				t.Errorf("check %s %s: reason %q does not mention %q", c.Name, c.Target, c.Reason, r)
			}
			// The table shows the reason too, not just the JSON.
			if !strings.Contains(out, r) {
				t.Errorf("output does not show %q", r)
			}
		}
		return
	}
	t.Errorf("no check %s target %q with status %s kind %q", w.check, w.target, w.st, w.kind)
}

// etcdctlHealthy runs the real `etcdctl endpoint health` with the same
// inputs, so verify's verdict can be compared with it.
func etcdctlHealthy(t *testing.T, endpoints []string, caFile, certFile, keyFile string) bool {
	t.Helper()
	cmd := exec.Command(etcdtest.EtcdctlBin(t), "endpoint", "health",
		"--endpoints="+strings.Join(endpoints, ","), "--cacert="+caFile, "--cert="+certFile, "--key="+keyFile,
		"--dial-timeout=2s", "--command-timeout=3s")
	for _, kv := range os.Environ() {
		// The operator's ETCDCTL_* settings must not leak into the test.
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	t.Logf("etcdctl endpoint health: %v\n%s", err, out)
	return err == nil
}

// swapServerCert replaces a member's serving certificate in place; etcd
// reads it again at every handshake, so the next client sees it. The
// original pair is put back when the test ends.
func swapServerCert(t *testing.T, c *etcdtest.Cluster, node string, s *testpki.CA, l testpki.LeafOptions) {
	t.Helper()
	crt, key := etcdtest.NodePair(c.Paths, node, "server")
	origCrt, err := os.ReadFile(crt)
	if err != nil {
		t.Fatal(err)
	}
	origKey, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(crt)
	l.CN, l.EKU = node, serverEKU
	cert := s.Leaf(t, l)
	replace := func(dst string, data []byte) {
		tmp := filepath.Join(dir, ".swap-"+filepath.Base(dst))
		testpki.WriteFile(t, tmp, data, 0o600)
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
	}
	replace(key, testpki.KeyPEM(t, cert.PrivateKey))
	replace(crt, testpki.CertPEM(cert.Certificate[0]))
	t.Cleanup(func() {
		replace(key, origKey)
		replace(crt, origCrt)
	})
}

func TestVerifyCluster(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	caFile := etcdtest.APIServerCA(c.Paths)
	_, apiCrt, apiKey := etcdtest.APIServerFiles(c.Paths)
	etcdCA := testpki.LoadCA(t, c.Paths.CACert(), c.Paths.CAKey())
	eps := c.Endpoints()
	spec, specInv := Options{}, pki.New(c.Spec)

	t.Run("healthy cluster passes and prints flags", func(t *testing.T) {
		o := spec
		o.PrintFlags = true
		rep, out, err := runVerify(t, specInv, o)
		assertReport(t, rep, out, err, want{pass: true, check: CheckQuorum, st: OK, reason: []string{"3 of 3 voting members healthy"}})
		// One warning, and only that one: etcd's auth is off in this
		// cluster, and every certificate reads every key.
		if rep.Counts[Fail] != 0 || rep.Counts[Warn] != 1 || rep.Counts[Skip] != 0 {
			t.Errorf("counts %v, want only ok and the auth-off warning", rep.Counts)
		}
		if c, _ := rep.find(CheckAuth, "cluster"); c.Status != Warn || !strings.Contains(c.Reason, AuthOffRisk) {
			t.Errorf("auth row %+v, want the auth-off warning", c)
		}
		for _, f := range []string{"--etcd-servers=" + strings.Join(eps, ","), "--etcd-cafile=", "etcd:\n  external:\n    endpoints:"} {
			if !strings.Contains(out, f) {
				t.Errorf("--print-flags output lacks %q", f)
			}
		}
		if !etcdctlHealthy(t, eps, caFile, apiCrt, apiKey) {
			t.Error("etcdctl says unhealthy, verify says healthy")
		}
	})

	// The CA's own pair works on the wire (it chains to itself, and etcd
	// accepts it), so only verify stands between it and every apiserver
	// host: it fails, and --print-flags prints nothing naming ca.key.
	t.Run("the CA's pair as the client's fails", func(t *testing.T) {
		// A clientAuth leaf (CA:FALSE) certifying the CA's own key.
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "kube-apiserver-etcd-client"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, etcdCA.Cert, etcdCA.Key.Public(), etcdCA.Key)
		if err != nil {
			t.Fatal(err)
		}
		caKeyLeaf := filepath.Join(t.TempDir(), "client.crt")
		testpki.WriteFile(t, caKeyLeaf, testpki.CertPEM(der), 0o644)
		for _, tc := range []struct{ name, cert, key, target, reason string }{
			{"CA cert and key", c.Paths.CACert(), c.Paths.CAKey(), c.Paths.CACert(), "is a CA certificate (CA:TRUE), never a client's"},
			{"a leaf for the CA key", caKeyLeaf, c.Paths.CAKey(), c.Paths.CAKey(), `the key is the key of CA "etcd-ca", never a client's`},
		} {
			o := Options{Endpoints: eps, CAFile: caFile, CertFile: tc.cert, KeyFile: tc.key, PrintFlags: true}
			rep, out, err := runVerify(t, nil, o)
			assertReport(t, rep, out, err, want{check: CheckClientNotCA, st: Fail, target: tc.target, reason: []string{tc.reason}})
			if strings.Contains(out, "ca.key") && strings.Contains(out, "keyFile") || strings.Contains(out, "--etcd-keyfile=") {
				t.Errorf("%s: verify printed flags naming the CA key:\n%s", tc.name, out)
			}
		}
	})

	t.Run("json output", func(t *testing.T) {
		o := spec
		o.JSON = true
		o.PrintFlags = true
		_, out, err := runVerify(t, specInv, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{`"check": "linearizable-read"`, `"passed": true`, `"clusterID":`, `"raftIndex":`, `"apiserverFlags": [`, `"--etcd-servers=`} {
			if !strings.Contains(out, s) {
				t.Errorf("JSON lacks %s", s)
			}
		}
	})

	t.Run("apiserver manifest", func(t *testing.T) {
		m := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
		testpki.WriteFile(t, m, []byte(`apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.34.0
    command:
    - kube-apiserver
    - --advertise-address=10.0.0.1
    - --etcd-servers=`+strings.Join(eps, ",")+`
    - --etcd-cafile
    - `+caFile+`
    - --etcd-certfile=`+apiCrt+`
    - --etcd-keyfile=`+apiKey+`
`), 0o644)
		rep, out, err := runVerify(t, nil, Options{Manifest: m})
		assertReport(t, rep, out, err, want{pass: true})
		if len(rep.Inputs.Endpoints) != 3 || rep.Inputs.CAFile != caFile {
			t.Errorf("inputs from manifest: %+v", rep.Inputs)
		}
	})

	type scenario struct {
		name      string
		setup     func(t *testing.T) Options
		want      want
		etcdctl   bool // etcdctl endpoint health applies to the same inputs
		strictToo *want
	}
	explicit := func(endpoints []string, crt, key string) Options {
		return Options{Endpoints: endpoints, CAFile: caFile, CertFile: crt, KeyFile: key}
	}
	scenarios := []scenario{
		{
			name: "server cert without the endpoint's IP",
			setup: func(t *testing.T) Options {
				swapServerCert(t, c, etcdtest.NodeName(2), etcdCA, testpki.LeafOptions{Hosts: []string{"10.0.0.99", "localhost"}})
				return explicit(eps, apiCrt, apiKey)
			},
			want:    want{check: CheckTLS, target: eps[1], st: Fail, kind: probe.KindSANMismatch, reason: []string{`"127.0.0.2"`, "10.0.0.99"}},
			etcdctl: true,
		},
		{
			name: "server cert from another CA",
			setup: func(t *testing.T) Options {
				swapServerCert(t, c, etcdtest.NodeName(3), testpki.NewCA(t, "rogue-ca"), testpki.LeafOptions{Hosts: []string{"127.0.0.3"}})
				return explicit(eps, apiCrt, apiKey)
			},
			want:    want{check: CheckTLS, target: eps[2], st: Fail, kind: probe.KindUnknownCA, reason: []string{"rogue-ca", "not signed by the given CA"}},
			etcdctl: true,
		},
		{
			name: "server cert expired",
			setup: func(t *testing.T) Options {
				swapServerCert(t, c, etcdtest.NodeName(1), etcdCA, testpki.LeafOptions{Hosts: []string{"127.0.0.1"},
					NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
				return explicit(eps, apiCrt, apiKey)
			},
			want:    want{check: CheckServerExpiry, target: eps[0], st: Fail, kind: probe.KindServerCertExpired, reason: []string{"server certificate of 127.0.0.1", "expired at"}},
			etcdctl: true,
		},
		{
			name: "expired client cert",
			setup: func(t *testing.T) Options {
				crt, key := testpki.WritePair(t, t.TempDir(), "client", etcdCA.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: clientEKU,
					NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
				return explicit(eps, crt, key)
			},
			want:    want{check: CheckTLS, target: eps[0], st: Fail, kind: probe.KindClientCertRejected, reason: []string{"rejected the client certificate", "expired"}},
			etcdctl: true,
		},
		{
			name: "client cert without clientAuth",
			setup: func(t *testing.T) Options {
				crt, key := testpki.WritePair(t, t.TempDir(), "client", etcdCA.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}))
				return explicit(eps, crt, key)
			},
			want:    want{check: CheckTLS, target: eps[0], st: Fail, kind: probe.KindClientCertRejected, reason: []string{"rejected the client certificate"}},
			etcdctl: true,
		},
		{
			name: "endpoint that accepts TCP and never answers",
			setup: func(t *testing.T) Options {
				return explicit(append(append([]string{}, eps...), "https://"+testpki.BlackHole(t)), apiCrt, apiKey)
			},
			want:    want{check: CheckTLS, st: Fail, kind: probe.KindTimeout, reason: []string{"accepted TCP but gave no TLS answer"}},
			etcdctl: true,
		},
		{
			name: "endpoint that speaks plain HTTP",
			setup: func(t *testing.T) Options {
				return explicit(append(append([]string{}, eps...), "https://"+testpki.PlainHTTP(t)), apiCrt, apiKey)
			},
			want:    want{check: CheckTLS, st: Fail, kind: probe.KindNotTLS, reason: []string{"plain HTTP, not TLS"}},
			etcdctl: true,
		},
		{
			name: "TLS endpoint that is not etcd",
			setup: func(t *testing.T) Options {
				return explicit(append(append([]string{}, eps...), otherTLSService(t, etcdCA)), apiCrt, apiKey)
			},
			want:    want{check: CheckStatus, st: Fail, kind: probe.KindNotEtcd, reason: []string{"not an etcd gRPC server"}},
			etcdctl: true,
		},
		{
			name:      "member missing from the endpoint list",
			setup:     func(t *testing.T) Options { return explicit(eps[:2], apiCrt, apiKey) },
			want:      want{pass: true, check: CheckCoverage, st: Warn, reason: []string{etcdtest.NodeName(3), eps[2], "never use"}},
			etcdctl:   true,
			strictToo: &want{check: CheckCoverage, st: Fail, reason: []string{etcdtest.NodeName(3)}},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			o := sc.setup(t)
			rep, out, err := runVerify(t, nil, o)
			assertReport(t, rep, out, err, sc.want)
			if sc.etcdctl {
				if got := etcdctlHealthy(t, rep.Inputs.Endpoints, rep.Inputs.CAFile, rep.Inputs.CertFile, rep.Inputs.KeyFile); got != rep.Passed {
					t.Errorf("etcdctl endpoint health says healthy=%v, verify says passed=%v", got, rep.Passed)
				}
			}
			if sc.strictToo != nil {
				o.Strict = true
				rep, out, err := runVerify(t, nil, o)
				assertReport(t, rep, out, err, *sc.strictToo)
				if rep.Counts[Warn] != 0 || rep.Counts[Fail] == 0 {
					t.Errorf("--strict counts %v: a warning left as a warning, or no failure", rep.Counts)
				}
				if c, _ := rep.find(sc.strictToo.check, ""); !strings.HasSuffix(c.Reason, "(--strict)") {
					t.Errorf("--strict row %q does not say why it failed", c.Reason)
				}
			}
		})
	}

	t.Run("active NOSPACE alarm", func(t *testing.T) {
		ctx := context.Background()
		cli := c.Client(t)
		id, err := c.Members[0].ID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// etcd raises NOSPACE itself when the backend quota is hit; raising
		// it by hand is the same alarm without filling a disk.
		if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{
			Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_NOSPACE,
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: id, Alarm: pb.AlarmType_NOSPACE}); err != nil {
				t.Errorf("disarm: %v", err)
			}
		})
		rep, out, err := runVerify(t, specInv, spec)
		assertReport(t, rep, out, err, want{check: CheckAlarms, target: eps[1], st: Fail, kind: probe.KindAlarm, reason: []string{"NOSPACE on member " + probe.ID(id).String()}})
		// etcdctl 3.4's endpoint health does not look at alarms.
		if etcdtest.EtcdctlAtLeast(t, 3, 5) && etcdctlHealthy(t, eps, caFile, apiCrt, apiKey) {
			t.Error("etcdctl says healthy with an active alarm")
		}
	})

	// Last: it changes the cluster for good.
	t.Run("stopped member", func(t *testing.T) {
		if err := c.Member(etcdtest.NodeName(3)).Stop(); err != nil {
			t.Fatal(err)
		}
		o := spec
		o.PrintFlags = true
		rep, out, err := runVerify(t, specInv, o)
		assertReport(t, rep, out, err, want{check: CheckTCP, target: eps[2], st: Fail, kind: probe.KindRefused, reason: []string{"connection refused", "127.0.0.3"}})
		if !strings.Contains(out, "flags not printed") || strings.Contains(out, "--etcd-servers=") {
			t.Error("--print-flags printed flags for a failing cluster")
		}
		if q, _ := rep.find(CheckQuorum, ""); q.Status != OK {
			t.Errorf("quorum check %+v, want ok with 2 of 3 up", q)
		}
		if etcdctlHealthy(t, eps, caFile, apiCrt, apiKey) {
			t.Error("etcdctl says healthy with a member stopped")
		}
	})
}
