package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
)

// kubeadmManifests writes what `kubeadm init phase control-plane all`
// writes into /etc/kubernetes/manifests for a ClusterConfiguration with
// etcd.external: the apiserver given --etcd-servers and the three files,
// the controller manager and the scheduler given none.
func kubeadmManifests(t *testing.T, dir string, servers []string, caFile, crt, key string) {
	t.Helper()
	files := map[string]string{
		"kube-apiserver.yaml": `apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.1:6443
  labels: {component: kube-apiserver, tier: control-plane}
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=10.0.0.1
    - --allow-privileged=true
    - --authorization-mode=Node,RBAC
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --enable-admission-plugins=NodeRestriction
    - --enable-bootstrap-token-auth=true
    - --etcd-cafile=` + caFile + `
    - --etcd-certfile=` + crt + `
    - --etcd-keyfile=` + key + `
    - --etcd-servers=` + strings.Join(servers, ",") + `
    - --kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt
    - --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key
    - --secure-port=6443
    - --service-account-issuer=https://kubernetes.default.svc.cluster.local
    - --service-cluster-ip-range=10.96.0.0/12
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key
    image: registry.k8s.io/kube-apiserver:v1.34.0
    name: kube-apiserver
  hostNetwork: true
  priorityClassName: system-node-critical
`,
		"kube-controller-manager.yaml": `apiVersion: v1
kind: Pod
metadata:
  labels: {component: kube-controller-manager, tier: control-plane}
  name: kube-controller-manager
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-controller-manager
    - --authentication-kubeconfig=/etc/kubernetes/controller-manager.conf
    - --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf
    - --bind-address=127.0.0.1
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --cluster-name=kubernetes
    - --cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt
    - --cluster-signing-key-file=/etc/kubernetes/pki/ca.key
    - --controllers=*,bootstrapsigner,tokencleaner
    - --kubeconfig=/etc/kubernetes/controller-manager.conf
    - --leader-elect=true
    - --root-ca-file=/etc/kubernetes/pki/ca.crt
    - --service-account-private-key-file=/etc/kubernetes/pki/sa.key
    - --use-service-account-credentials=true
    image: registry.k8s.io/kube-controller-manager:v1.34.0
    name: kube-controller-manager
  hostNetwork: true
`,
		"kube-scheduler.yaml": `apiVersion: v1
kind: Pod
metadata:
  labels: {component: kube-scheduler, tier: control-plane}
  name: kube-scheduler
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-scheduler
    - --authentication-kubeconfig=/etc/kubernetes/scheduler.conf
    - --authorization-kubeconfig=/etc/kubernetes/scheduler.conf
    - --bind-address=127.0.0.1
    - --kubeconfig=/etc/kubernetes/scheduler.conf
    - --leader-elect=true
    image: registry.k8s.io/kube-scheduler:v1.34.0
    name: kube-scheduler
  hostNetwork: true
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestManifestsDirChecksTheControlPlane checks kubeadm's control-plane
// manifests for an external etcd against a real cluster: they pass;
// --etcd-servers added to the controller manager fails, naming the file
// and the flag and saying that only kube-apiserver talks to etcd; a
// local etcd manifest left beside them is a warning.
func TestManifestsDirChecksTheControlPlane(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{})
	p := pki.Paths{PKI: c.Spec.PKIDir}
	caFile, crt, key := etcdtest.APIServerFiles(p)
	dir := t.TempDir()
	kubeadmManifests(t, dir, c.Endpoints(), caFile, crt, key)

	rep, out, err := runVerify(t, nil, Options{ManifestsDir: dir})
	assertReport(t, rep, out, err, want{pass: true, check: CheckManifestEtcdFlags, st: OK, target: filepath.Join(dir, "kube-scheduler.yaml")})
	if rep.Inputs.Sources["endpoints"] != "manifest "+filepath.Join(dir, "kube-apiserver.yaml") {
		t.Errorf("endpoints from %q, want the apiserver manifest", rep.Inputs.Sources["endpoints"])
	}

	cm := filepath.Join(dir, "kube-controller-manager.yaml")
	data, _ := os.ReadFile(cm)
	data = []byte(strings.Replace(string(data), "    - --leader-elect=true\n", "    - --leader-elect=true\n    - --etcd-servers="+strings.Join(c.Endpoints(), ",")+"\n", 1))
	if err := os.WriteFile(cm, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, out, err = runVerify(t, nil, Options{ManifestsDir: dir})
	assertReport(t, rep, out, err, want{check: CheckManifestEtcdFlags, st: Fail, target: cm,
		reason: []string{"kube-controller-manager is given --etcd-servers", `"unknown flag"`, "only kube-apiserver talks to etcd"}})
	if err := os.WriteFile(cm, []byte(strings.Replace(string(data), "    - --etcd-servers="+strings.Join(c.Endpoints(), ",")+"\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	etcd := filepath.Join(dir, "etcd.yaml")
	if err := os.WriteFile(etcd, []byte(`apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://10.0.0.1:2379
    - --listen-client-urls=https://127.0.0.1:2379,https://10.0.0.1:2379
    - --data-dir=/var/lib/etcd
    image: registry.k8s.io/etcd:3.6.4-0
    name: etcd
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, out, err = runVerify(t, nil, Options{ManifestsDir: dir})
	assertReport(t, rep, out, err, want{pass: true, check: CheckManifestLocalEtcd, st: Warn, target: etcd, reason: []string{"stacked etcd left running"}})
}
