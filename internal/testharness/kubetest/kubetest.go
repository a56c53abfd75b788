// Package kubetest runs a real kube-apiserver (v1.37.2, built by `make
// kube-apiserver` into bin/) for the controller's and the agent's tests,
// through controller-runtime's envtest: the EtcdCluster CRD from deploy/
// installed, users with the identities the agents use, kubeconfig files
// for the processes a test starts, and a stop and start of the apiserver
// for the tests of an agent that outlives it.
package kubetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
)

// Env is a running control plane.
type Env struct {
	// Config and Client are the admin's (system:masters).
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	env    *envtest.Environment
	dir    string
}

// Option adjusts the apiserver before it starts.
type Option func(*envtest.Environment)

// WithEtcd points the apiserver at an etcd cluster of the test's own over
// TLS (the self-hosted case: the apiserver stored on the cluster etcdpki
// manages) instead of envtest's plain etcd.
func WithEtcd(servers, caFile, certFile, keyFile string) Option {
	return func(e *envtest.Environment) {
		args := e.ControlPlane.GetAPIServer().Configure()
		args.Set("etcd-servers", servers)
		args.Set("etcd-cafile", caFile)
		args.Set("etcd-certfile", certFile)
		args.Set("etcd-keyfile", keyFile)
	}
}

// WithArg sets one more apiserver flag.
func WithArg(name string, values ...string) Option {
	return func(e *envtest.Environment) { e.ControlPlane.GetAPIServer().Configure().Set(name, values...) }
}

// Start starts etcd (envtest's own, for the apiserver's storage) and the
// apiserver, installs the CRDs in deploy/crd and stops both when t ends.
// It skips under -short and fails, naming `make kube-apiserver`, when the
// binary is missing: CI must never pass by running nothing.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	etcdtest.Integration(t)
	bin := APIServerBin(t)
	dir := t.TempDir()
	e := &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(moduleRoot(t), "deploy", "crd")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStopTimeout:  30 * time.Second,
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	api := e.ControlPlane.GetAPIServer()
	api.Path = bin
	// A fixed directory keeps the serving certificate and the users'
	// CA across a stop and start, so kubeconfigs made before still work.
	api.CertDir = filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.ControlPlane.Etcd = &envtest.Etcd{Path: etcdtest.EtcdBin(t)}
	// With a watch open, a graceful stop waits out the request timeout
	// (60 s), longer than envtest waits: end watches after 2 s, so a test
	// can stop the apiserver under the controller's and agents' watches.
	api.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	for _, o := range opts {
		o(e)
	}
	cfg, err := e.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Logf("stop control plane: %v", err)
		}
	})
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Config: cfg, Client: c, Scheme: s, env: e, dir: dir}
}

// APIServerBin is $KUBE_APISERVER_BIN, or bin/kube-apiserver at the module
// root; it fails t, saying how to build it, when it is missing.
func APIServerBin(t testing.TB) string {
	t.Helper()
	path := os.Getenv("KUBE_APISERVER_BIN")
	if path == "" {
		path = filepath.Join(moduleRoot(t), "bin", "kube-apiserver")
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("kube-apiserver binary %s does not exist: run `make kube-apiserver` at the repository root (or set KUBE_APISERVER_BIN)", path)
	}
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("kube-apiserver binary %s is not an executable file (%v)", path, err)
	}
	return path
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := etcdtest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// AddUser provisions a user authenticated by a client certificate, as the
// agents are in production (kubeadm kubeconfig user --client-name), and
// writes its kubeconfig under the test's directory; it returns the file
// and the rest config.
func (e *Env) AddUser(t testing.TB, name string, groups ...string) (string, *rest.Config) {
	t.Helper()
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, e.Config)
	if err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, fmt.Sprintf("kubeconfig-%d", len(kcNames(e.dir))))
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, u.Config()
}

func kcNames(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "kubeconfig-*"))
	return m
}

// AdminKubeconfig is a kubeconfig file for system:masters.
func (e *Env) AdminKubeconfig(t testing.TB) string {
	t.Helper()
	path, _ := e.AddUser(t, "etcdpki-test-admin", "system:masters")
	return path
}

// StopAPIServer stops the apiserver process (its storage keeps running).
func (e *Env) StopAPIServer(t testing.TB) {
	t.Helper()
	if err := e.env.ControlPlane.GetAPIServer().Stop(); err != nil {
		t.Fatalf("stop kube-apiserver: %v", err)
	}
}

// StartAPIServer starts it again on the same address, with the same
// serving certificate and users.
func (e *Env) StartAPIServer(t testing.TB) {
	t.Helper()
	if err := e.env.ControlPlane.GetAPIServer().Start(); err != nil {
		t.Fatalf("start kube-apiserver again: %v", err)
	}
}

// Namespace creates a namespace for one test.
func (e *Env) Namespace(t testing.TB, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// Apply creates (or updates) every object of a YAML manifest file, such
// as the RBAC in deploy/, relative to the module root; namespaced objects
// without a namespace go to ns.
func (e *Env) Apply(t testing.TB, file, ns string) {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		mapping, err := e.Client.RESTMapper().RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			t.Fatalf("%s: %s: %v", file, u.GetKind(), err)
		}
		if mapping.Scope.Name() == "namespace" && u.GetNamespace() == "" {
			u.SetNamespace(ns)
		}
		ctx := context.Background()
		if err := e.Client.Create(ctx, &u); err != nil {
			t.Fatalf("%s: create %s %s: %v", file, u.GetKind(), u.GetName(), err)
		}
	}
}

// RestartAPIServer stops the apiserver and starts it again, as a restart
// command on its host would: for the control script of a harness, which
// runs outside the test's goroutine and reports an error instead of
// failing the test.
func (e *Env) RestartAPIServer() error {
	api := e.env.ControlPlane.GetAPIServer()
	if err := api.Stop(); err != nil {
		return fmt.Errorf("stop kube-apiserver: %w", err)
	}
	if err := api.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	return nil
}
