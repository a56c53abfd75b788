package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
)

// etcdpkiRun runs etcdpki in this process and returns its exit code,
// stdout and stderr.
func etcdpkiRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), append([]string{"etcdpki"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun is etcdpkiRun that fails the test on a non-zero exit.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := etcdpkiRun(t, args...)
	if code != 0 {
		t.Fatalf("etcdpki %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// exportSpec writes a two-node spec named name whose PKI is DIR/pkiDir and
// returns its path.
func exportSpec(t *testing.T, dir, file, name, pkiDir, caKey string) string {
	t.Helper()
	body := "name: " + name + "\npkiDir: " + pkiDir + "\n"
	if caKey != "" {
		body += "ca:\n  key: \"" + caKey + "\"\n"
	}
	// Loopback addresses on ports nothing listens on: adopt, in the
	// break-glass test, dials them and must be refused at once.
	body += "nodes:\n  - name: etcd-node-1\n    ips: [127.0.0.41]\n    clientPort: 1\n    peerPort: 2\n" +
		"  - name: etcd-node-2\n    ips: [127.0.0.42]\n    clientPort: 1\n    peerPort: 2\n" +
		"clients:\n  - name: ops\n"
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// versions are the resourceVersions of the three objects (absent: "").
func versions(t *testing.T, c client.Client, ns, name string) [3]string {
	t.Helper()
	var v [3]string
	ctx := context.Background()
	var s corev1.Secret
	if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.CASecretName(name)}, &s) == nil {
		v[0] = s.ResourceVersion
	}
	var cm corev1.ConfigMap
	if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.TrustConfigMapName(name)}, &cm) == nil {
		v[1] = cm.ResourceVersion
	}
	var ec v1alpha1.EtcdCluster
	if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ec) == nil {
		v[2] = ec.ResourceVersion
	}
	return v
}

// keysIn lists, for every Secret, ConfigMap and EtcdCluster of the
// namespace, each value holding a private key (a PEM private key block,
// or the DER of caKey): "Secret/NAME/KEY". The API objects are read as
// stored, not as export meant them.
func keysIn(t *testing.T, c client.Client, ns string, caKeyDER []byte) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	check := func(where string, v []byte) {
		if bytes.Contains(v, []byte("PRIVATE KEY")) || (caKeyDER != nil && bytes.Contains(v, caKeyDER)) {
			found = append(found, where)
		}
	}
	var secrets corev1.SecretList
	var cms corev1.ConfigMapList
	var ecs v1alpha1.EtcdClusterList
	for _, l := range []client.ObjectList{&secrets, &cms, &ecs} {
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			check("Secret/"+s.Name+"/"+k, v)
		}
	}
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			check("ConfigMap/"+cm.Name+"/"+k, []byte(v))
		}
		for k, v := range cm.BinaryData {
			check("ConfigMap/"+cm.Name+"/"+k, v)
		}
	}
	for _, ec := range ecs.Items {
		data, _ := json.Marshal(ec)
		check("EtcdCluster/"+ec.Name, data)
	}
	return found
}

// TestExportHandsThePKIToTheCluster runs export against a real apiserver:
// the three objects hold the PKI's CA, CRL and spec and no private key but
// the CA Secret's tls.key; a second run changes nothing; a run after a
// change puts the PKI's content back; a Secret holding another CA, a
// missing namespace and another cluster's EtcdCluster are refused with
// exit 2 and nothing changed.
func TestExportHandsThePKIToTheCluster(t *testing.T) {
	env := kubetest.Start(t)
	kc := env.AdminKubeconfig(t)
	root := t.TempDir()
	spec := exportSpec(t, root, "prod.yaml", "prod", "pki", "")
	mustRun(t, "init", "--spec", spec)
	ns := env.Namespace(t, "export")
	pkiDir := filepath.Join(root, "pki")
	caCert, caKey := readFile(t, filepath.Join(pkiDir, "etcd", "ca.crt")), readFile(t, filepath.Join(pkiDir, "etcd", "ca.key"))
	crl := readFile(t, filepath.Join(pkiDir, "etcd", "crl.der"))
	c := env.Client
	ctx := context.Background()

	// A dry run is admitted by the apiserver and stores nothing.
	out := mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns, "--dry-run")
	if strings.Count(out, "would be created ") != 3 {
		t.Errorf("dry run printed %q, want 3 would be created lines", out)
	}
	if v := versions(t, c, ns, "prod"); v != [3]string{} {
		t.Errorf("a dry run stored objects: %v", v)
	}

	out = mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"created Secret export/prod-etcd-ca: CA \"etcd-ca\" serial ", "created ConfigMap export/prod-etcd-trust: ca.crt, crl.der number ", "created EtcdCluster export/prod: spec from " + spec + ": 2 nodes"}
	if len(lines) != 3 {
		t.Fatalf("export printed %q, want 3 lines", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to begin %q", i+1, lines[i], w)
		}
	}

	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod-etcd-ca"}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeTLS || !bytes.Equal(s.Data["tls.crt"], caCert) || !bytes.Equal(s.Data["tls.key"], caKey) || len(s.Data) != 2 {
		t.Errorf("CA Secret: type %s, keys %v; want kubernetes.io/tls with PKI/etcd/ca.crt and ca.key", s.Type, keysOf(s.Data))
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod-etcd-trust"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["ca.crt"] != string(caCert) || !bytes.Equal(cm.BinaryData["crl.der"], crl) {
		t.Errorf("trust ConfigMap: ca.crt or crl.der differ from the PKI's")
	}
	var ec v1alpha1.EtcdCluster
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod"}, &ec); err != nil {
		t.Fatal(err)
	}
	got, err := ec.Cluster(cluster.Options{})
	if err != nil {
		t.Fatalf("the exported EtcdCluster does not validate: %v", err)
	}
	if got.Name != "prod" || got.PKIDir != pkiDir || len(got.Nodes) != 2 || got.Nodes[1].IPs[0].String() != "127.0.0.42" || len(got.Clients) != 3 {
		t.Errorf("EtcdCluster spec = %+v", ec.Spec)
	}
	block, _ := pem.Decode(caKey)
	if found := keysIn(t, c, ns, block.Bytes); len(found) != 1 || found[0] != "Secret/prod-etcd-ca/tls.key" {
		t.Errorf("private keys in API objects: %v, want only Secret/prod-etcd-ca/tls.key", found)
	}

	t.Run("the PKI comes back from the Secret", func(t *testing.T) {
		// The break-glass procedure of the docs: the CA from the Secret,
		// the spec from the EtcdCluster (JSON is YAML), a node's bundle
		// copied from its host; adopt takes them with the cluster down.
		back := t.TempDir()
		var s corev1.Secret
		c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod-etcd-ca"}, &s)
		var ec v1alpha1.EtcdCluster
		c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod"}, &ec)
		specJSON, _ := json.Marshal(ec.Spec)
		for name, data := range map[string][]byte{"ca.crt": s.Data["tls.crt"], "ca.key": s.Data["tls.key"], "cluster.yaml": specJSON} {
			if err := os.WriteFile(filepath.Join(back, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		newPKI := filepath.Join(back, "pki")
		mustRun(t, "adopt", "--spec", filepath.Join(back, "cluster.yaml"), "--dir", newPKI,
			"--ca-cert", filepath.Join(back, "ca.crt"), "--ca-key", filepath.Join(back, "ca.key"),
			"--node-dir", "etcd-node-1="+filepath.Join(pkiDir, "nodes", "etcd-node-1"), "--accept-mismatch", "--timeout", "2s")
		if got := readFile(t, filepath.Join(newPKI, "etcd", "ca.crt")); !bytes.Equal(got, caCert) {
			t.Error("the PKI taken back has another CA")
		}
		if got := readFile(t, filepath.Join(newPKI, "nodes", "etcd-node-1", "etcd", "server.crt")); !bytes.Equal(got, readFile(t, filepath.Join(pkiDir, "nodes", "etcd-node-1", "etcd", "server.crt"))) {
			t.Error("the PKI taken back lacks etcd-node-1's server certificate")
		}
	})

	t.Run("again changes nothing", func(t *testing.T) {
		before := versions(t, c, ns, "prod")
		out := mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns)
		if n := strings.Count(out, "unchanged "); n != 3 {
			t.Errorf("second export printed %q, want 3 unchanged lines", out)
		}
		if after := versions(t, c, ns, "prod"); after != before {
			t.Errorf("objects written again: %v -> %v", before, after)
		}
	})

	t.Run("again puts the PKI back", func(t *testing.T) {
		cm.BinaryData["crl.der"] = []byte("garbage")
		if err := c.Update(ctx, &cm); err != nil {
			t.Fatal(err)
		}
		ec.Spec.Certs.Validity = "10d"
		if err := c.Update(ctx, &ec); err != nil {
			t.Fatal(err)
		}
		before := versions(t, c, ns, "prod")
		out := mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns, "--dry-run")
		for _, w := range []string{"unchanged Secret", "would be updated ConfigMap", "would be updated EtcdCluster"} {
			if !strings.Contains(out, w) {
				t.Errorf("dry run printed %q, want %q", out, w)
			}
		}
		if after := versions(t, c, ns, "prod"); after != before {
			t.Errorf("a dry run wrote: %v -> %v", before, after)
		}
		out = mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns)
		for _, w := range []string{"unchanged Secret", "updated ConfigMap", "updated EtcdCluster"} {
			if !strings.Contains(out, w) {
				t.Errorf("export printed %q, want %q", out, w)
			}
		}
		var cm2 corev1.ConfigMap
		var ec2 v1alpha1.EtcdCluster
		c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod-etcd-trust"}, &cm2)
		c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod"}, &ec2)
		if !bytes.Equal(cm2.BinaryData["crl.der"], crl) || ec2.Spec.Certs.Validity != "" {
			t.Errorf("export did not restore the CRL or the spec: validity %q", ec2.Spec.Certs.Validity)
		}
	})

	t.Run("a newer CRL of the same CA is kept", func(t *testing.T) {
		newer := newerCRL(t, pkiDir)
		var cm2 corev1.ConfigMap
		c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod-etcd-trust"}, &cm2)
		cm2.BinaryData["crl.der"] = newer
		if err := c.Update(ctx, &cm2); err != nil {
			t.Fatal(err)
		}
		out := mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns)
		if !strings.Contains(out, "unchanged ConfigMap export/prod-etcd-trust: ca.crt, crl.der kept: its number 1000 is newer") {
			t.Errorf("export printed %q, want the newer CRL kept", out)
		}
		c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prod-etcd-trust"}, &cm2)
		if !bytes.Equal(cm2.BinaryData["crl.der"], newer) {
			t.Errorf("the newer CRL was replaced by the PKI's")
		}
	})

	t.Run("a different CA is refused", func(t *testing.T) {
		other := exportSpec(t, root, "other.yaml", "prod", "pki-other", "")
		mustRun(t, "init", "--spec", other)
		before := versions(t, c, ns, "prod")
		code, _, errs := etcdpkiRun(t, "export", "--spec", other, "--kubeconfig", kc, "--namespace", ns)
		if code != 2 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "Secret export/prod-etcd-ca holds a different CA") {
			t.Errorf("exit %d, stderr %q; want 2 and one line naming the Secret", code, errs)
		}
		if after := versions(t, c, ns, "prod"); after != before {
			t.Errorf("objects changed by a refused export: %v -> %v", before, after)
		}
	})

	t.Run("a missing namespace is refused", func(t *testing.T) {
		code, _, errs := etcdpkiRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", "nowhere")
		if code != 2 || !strings.Contains(errs, "--namespace nowhere: the namespace does not exist") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})

	t.Run("another cluster's EtcdCluster is refused", func(t *testing.T) {
		theirs := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shared"},
			Spec: v1alpha1.EtcdClusterSpec{Name: "someone-else", Nodes: []v1alpha1.NodeSpec{{Name: "n1", IPs: []string{"10.1.0.1"}}}}}
		if err := c.Create(ctx, theirs); err != nil {
			t.Fatal(err)
		}
		shared := exportSpec(t, root, "shared.yaml", "shared", "pki-shared", "")
		mustRun(t, "init", "--spec", shared)
		code, _, errs := etcdpkiRun(t, "export", "--spec", shared, "--kubeconfig", kc, "--namespace", ns)
		if code != 2 || !strings.Contains(errs, `EtcdCluster export/shared exists for another cluster (its spec.name is "someone-else"`) {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
		if v := versions(t, c, ns, "shared"); v[0] != "" || v[1] != "" {
			t.Errorf("a refused export created the Secret or the ConfigMap: %v", v)
		}
	})
}

func keysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// newerCRL is a CRL of the PKI's CA numbered 1000, as the controller
// would sign it after the export (the test stands in for it).
func newerCRL(t *testing.T, pkiDir string) []byte {
	t.Helper()
	certs, err := certx.ParseCertificates(readFile(t, filepath.Join(pkiDir, "etcd", "ca.crt")))
	if err != nil {
		t.Fatal(err)
	}
	key, err := certx.ParseKey(readFile(t, filepath.Join(pkiDir, "etcd", "ca.key")))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateRevocationList(nil, &x509.RevocationList{Number: big.NewInt(1000), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, certs[0], key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
