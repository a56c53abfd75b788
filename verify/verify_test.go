package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	manifest := func(name, body string) string {
		p := filepath.Join(dir, name)
		testpki.WriteFile(t, p, []byte(body), 0o644)
		return p
	}
	noServers := manifest("no-servers.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --etcd-cafile=/ca.crt]\n")
	notPod := manifest("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n")
	dangling := manifest("dangling.yaml", "kind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --etcd-servers]\n")

	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"nothing", Options{}, "no etcd endpoints"},
		{"no CA", Options{Endpoints: []string{"https://127.0.0.1:2379"}, CertFile: "c", KeyFile: "k"}, "never falls back to the system roots"},
		{"cert without key", Options{Endpoints: []string{"https://127.0.0.1:2379"}, CAFile: "ca", CertFile: "c"}, "no client certificate and key"},
		{"endpoint looks like a flag", Options{Endpoints: []string{"--strict"}, CAFile: "ca", CertFile: "c", KeyFile: "k"}, "looks like a flag"},
		{"manifest missing", Options{Manifest: filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"manifest not a Pod", Options{Manifest: notPod}, "want a Pod"},
		{"manifest without --etcd-servers", Options{Manifest: noServers}, "no --etcd-servers"},
		{"manifest flag without value", Options{Manifest: dangling}, "has no value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Evaluate(context.Background(), nil, tc.o)
			var ue *input.Error
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want *input.Error", err, err)
			}
			if ue.ExitCode() != 2 {
				t.Errorf("exit code %d", ue.ExitCode())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestReadManifest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
	testpki.WriteFile(t, p, []byte(`apiVersion: v1
kind: Pod
spec:
  containers:
  - name: sidecar
    command: [sleep, --etcd-servers=https://wrong:1]
  - name: kube-apiserver
    command: [kube-apiserver]
    args:
    - --etcd-servers=https://10.0.0.11:2379,https://10.0.0.12:2379
    - --etcd-cafile
    - /etc/kubernetes/pki/etcd/ca.crt
    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt
    - --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key
    - --etcd-prefix=/registry
`), 0o644)
	m, err := ReadManifest(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.Endpoints, " ") != "https://10.0.0.11:2379 https://10.0.0.12:2379" ||
		m.CAFile != "/etc/kubernetes/pki/etcd/ca.crt" ||
		m.CertFile != "/etc/kubernetes/pki/apiserver-etcd-client.crt" ||
		m.KeyFile != "/etc/kubernetes/pki/apiserver-etcd-client.key" {
		t.Errorf("read %+v", m)
	}
}

func TestLocalChecks(t *testing.T) {
	etcdCA := testpki.NewCA(t, "etcd-ca")
	now := time.Now()
	type files struct{ ca, crt, key string }
	good := func(t *testing.T) files {
		dir := t.TempDir()
		ca := etcdCA.WriteCert(t, dir, "ca")
		crt, key := testpki.WritePair(t, dir, "client", etcdCA.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: clientEKU}))
		return files{ca, crt, key}
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T) files
		check  string
		st     Status
		reason string
		usable bool
		// renewIn overrides cluster.DefaultRenewBefore.
		renewIn time.Duration
		// clean: no row may warn or fail.
		clean bool
	}{
		// testpki's CA lives 24h: inside the default renew-before.
		{name: "all good", setup: good, check: CheckKeyMatchesCert, st: OK, usable: true, clean: true, renewIn: time.Hour},
		{name: "key readable by others", setup: func(t *testing.T) files {
			f := good(t)
			if err := os.Chmod(f.key, 0o644); err != nil {
				t.Fatal(err)
			}
			return f
		}, check: CheckKeyPermissions, st: Fail, reason: "mode 0644", usable: true},
		{name: "key of another pair", setup: func(t *testing.T) files {
			f := good(t)
			_, other := testpki.WritePair(t, t.TempDir(), "other", etcdCA.Leaf(t, testpki.LeafOptions{CN: "x", EKU: clientEKU}))
			f.key = other
			return f
		}, check: CheckKeyMatchesCert, st: Fail, reason: "does not belong"},
		{name: "missing key", setup: func(t *testing.T) files {
			f := good(t)
			f.key += ".gone"
			return f
		}, check: CheckClientKeyFile, st: Fail, reason: "no such file"},
		{name: "two CAs outside a CA rotation", setup: func(t *testing.T) files {
			f := good(t)
			other := testpki.NewCA(t, "other-ca").WriteCert(t, t.TempDir(), "ca")
			a, _ := os.ReadFile(f.ca)
			b, _ := os.ReadFile(other)
			testpki.WriteFile(t, f.ca, append(a, b...), 0o644)
			return f
		}, check: CheckCAFile, st: Warn, reason: "2 CAs trusted outside a CA rotation", usable: true, renewIn: time.Hour},
		{name: "CA file holds no certificate", setup: func(t *testing.T) files {
			f := good(t)
			f.ca = f.key
			return f
		}, check: CheckCAFile, st: Fail, reason: "no PEM certificate"},
		{name: "client cert from another CA", setup: func(t *testing.T) files {
			f := good(t)
			f.crt, f.key = testpki.WritePair(t, t.TempDir(), "c", testpki.NewCA(t, "rogue-ca").Leaf(t, testpki.LeafOptions{CN: "x", EKU: clientEKU}))
			return f
		}, check: CheckClientChain, st: Fail, reason: `issuer "rogue-ca"`, usable: true},
		{name: "client cert expiring soon", setup: func(t *testing.T) files {
			f := good(t)
			f.crt, f.key = testpki.WritePair(t, t.TempDir(), "c", etcdCA.Leaf(t, testpki.LeafOptions{CN: "x", EKU: clientEKU, NotAfter: now.Add(10 * 24 * time.Hour)}))
			return f
		}, check: CheckClientExpiry, st: Warn, reason: "inside renew-before 30d", usable: true},
		{name: "client cert not yet valid", setup: func(t *testing.T) files {
			f := good(t)
			f.crt, f.key = testpki.WritePair(t, t.TempDir(), "c", etcdCA.Leaf(t, testpki.LeafOptions{CN: "x", EKU: clientEKU, NotBefore: now.Add(2 * time.Hour)}))
			return f
		}, check: CheckClientExpiry, st: Fail, reason: "check the clocks", usable: true},
		{name: "client cert with serverAuth only", setup: func(t *testing.T) files {
			f := good(t)
			f.crt, f.key = testpki.WritePair(t, t.TempDir(), "c", etcdCA.Leaf(t, testpki.LeafOptions{CN: "x", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}))
			return f
		}, check: CheckClientAuth, st: Fail, reason: "no clientAuth", usable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.setup(t)
			in := &Inputs{CAFile: f.ca, CertFile: f.crt, KeyFile: f.key, renewBefore: cluster.DefaultRenewBefore}
			if tc.renewIn != 0 {
				in.renewBefore = tc.renewIn
			}
			checks, cfg := localChecks(in, now)
			if (cfg != nil) != tc.usable {
				t.Errorf("TLS config usable = %v, want %v", cfg != nil, tc.usable)
			}
			for _, c := range checks {
				t.Logf("%s %s %s", c.Name, c.Status, c.Reason)
				if tc.clean && (c.Status == Fail || c.Status == Warn) {
					t.Errorf("%s on %s: %s %q, want no warning or failure", c.Name, c.Target, c.Status, c.Reason)
				}
			}
			for _, c := range checks {
				if c.Name == tc.check {
					if c.Status != tc.st || !strings.Contains(c.Reason, tc.reason) {
						t.Errorf("%s = %s %q, want %s mentioning %q", c.Name, c.Status, c.Reason, tc.st, tc.reason)
					}
					return
				}
			}
			t.Errorf("no %s check", tc.check)
		})
	}
}

// Endpoints that cannot work are findings about the endpoint, reported on
// its row, not usage errors: the manifest may be what is wrong.
func TestBadEndpoints(t *testing.T) {
	etcdCA := testpki.NewCA(t, "etcd-ca")
	dir := t.TempDir()
	ca := etcdCA.WriteCert(t, dir, "ca")
	crt, key := testpki.WritePair(t, dir, "client", etcdCA.Leaf(t, testpki.LeafOptions{CN: "kube-apiserver-etcd-client", EKU: clientEKU}))
	tests := []struct{ ep, reason string }{
		{"http://127.0.0.1:2379", "uses http"},
		{"https://127.0.0.1", "has no port"},
		{"unix:///run/etcd.sock", `scheme "unix"`},
	}
	for _, tc := range tests {
		t.Run(tc.ep, func(t *testing.T) {
			rep, err := Evaluate(context.Background(), nil, Options{Endpoints: []string{tc.ep}, CAFile: ca, CertFile: crt, KeyFile: key, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			c, ok := rep.find(CheckTCP, tc.ep)
			if !ok || c.Status != Fail || !strings.Contains(c.Reason, tc.reason) || rep.Passed {
				t.Errorf("%s: %+v (passed %v)", tc.ep, c, rep.Passed)
			}
		})
	}
}

func TestServerCertExpiryWarns(t *testing.T) {
	now := time.Now()
	r := &probe.Result{Endpoint: "https://10.0.0.1:2379", Addr: "10.0.0.1:2379",
		ServerCert: &probe.CertInfo{Subject: "CN=etcd-1", Issuer: "CN=etcd-ca", NotAfter: now.Add(10 * 24 * time.Hour)},
		Status:     &probe.Status{MemberID: 1, Leader: 1}}
	for _, c := range endpointChecks(r, now, cluster.DefaultRenewBefore) {
		if c.Name == CheckServerExpiry {
			if c.Status != Warn || !strings.Contains(c.Reason, "expires in 10d") {
				t.Errorf("%+v", c)
			}
			return
		}
	}
	t.Error("no server-cert-expiry check")
}
