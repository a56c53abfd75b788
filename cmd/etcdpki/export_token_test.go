//go:build cgo && !nopkcs11

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
)

// TestExportTokenCAHoldsNoKey: with the CA key in a PKCS#11 token (a real
// SoftHSM2 token), the CA Secret holds the certificate and the key's URI
// as the PKI records it, and no API object holds any private key.
func TestExportTokenCAHoldsNoKey(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	env := kubetest.Start(t)
	kc := env.AdminKubeconfig(t)
	root := t.TempDir()
	spec := exportSpec(t, root, "prod.yaml", "prod", "pki", tk.URI("etcd-ca"))
	mustRun(t, "init", "--spec", spec)
	ns := env.Namespace(t, "token")
	uri, err := os.ReadFile(filepath.Join(root, "pki", "etcd", "ca.key.uri"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "pki", "etcd", "ca.key")); err == nil {
		t.Fatal("init with a token CA wrote PKI/etcd/ca.key")
	}

	out := mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns)
	if !strings.Contains(out, "created Secret token/prod-etcd-ca: CA \"etcd-ca\"") || !strings.Contains(out, "key in a token (key-uri pkcs11: token etcd, object etcd-ca), no key") {
		t.Errorf("export printed %q", out)
	}
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "prod-etcd-ca"}, &s); err != nil {
		t.Fatal(err)
	}
	caCert := readFile(t, filepath.Join(root, "pki", "etcd", "ca.crt"))
	if s.Type != corev1.SecretTypeOpaque || len(s.Data) != 2 || !bytes.Equal(s.Data[v1alpha1.SecretCert], caCert) ||
		string(s.Data[v1alpha1.SecretKeyURI]) != strings.TrimSpace(string(uri)) {
		t.Errorf("CA Secret: type %s, keys %v, key-uri %q; want Opaque with tls.crt and key-uri %q", s.Type, keysOf(s.Data), s.Data[v1alpha1.SecretKeyURI], uri)
	}
	if _, ok := s.Data[v1alpha1.SecretKey]; ok {
		t.Error("the CA Secret has a tls.key with the CA key in a token")
	}
	var ec v1alpha1.EtcdCluster
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "prod"}, &ec); err != nil {
		t.Fatal(err)
	}
	if ec.Spec.CA.Key != strings.TrimSpace(string(uri)) {
		t.Errorf("EtcdCluster spec.ca.key = %q, want the PKI's record %q", ec.Spec.CA.Key, uri)
	}
	if found := keysIn(t, env.Client, ns, nil); len(found) != 0 {
		t.Errorf("private keys in API objects: %v, want none", found)
	}
	// Idempotent with a token too.
	if out := mustRun(t, "export", "--spec", spec, "--kubeconfig", kc, "--namespace", ns); strings.Count(out, "unchanged ") != 3 {
		t.Errorf("second export printed %q, want 3 unchanged lines", out)
	}
}
