package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
)

// Writers of the same status, each its own entries, all land: a conflict
// is retried from a fresh read, never lost.
func TestUpdateStatusMergesConcurrentWriters(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "status")
	ec := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"},
		Spec: v1alpha1.EtcdClusterSpec{Name: "prod", Nodes: []v1alpha1.NodeSpec{{Name: "n1", IPs: []string{"127.0.0.1"}}}}}
	if err := e.Client.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	c, _, err := Client(e.AdminKubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				now := metav1.NewTime(time.Now())
				errs <- UpdateStatus(ctx, c, client.ObjectKeyFromObject(ec), func(ec *v1alpha1.EtcdCluster) error {
					ec.Status.Observe(v1alpha1.CertificateStatus{ID: fmt.Sprintf("w%d/%d", w, i), Owner: "n1", InEffect: true, ProvenAt: &now})
					return nil
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var got v1alpha1.EtcdCluster
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(ec), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Certificates) != writers*each {
		t.Errorf("%d entries, want %d: a conflicting write was lost", len(got.Status.Certificates), writers*each)
	}
}

func TestConfigNamesTheFlag(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "kc")
	if err := os.WriteFile(bad, []byte("not: [a kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", bad, filepath.Join(t.TempDir(), "missing")} {
		_, err := Config(path)
		coder, ok := err.(input.Coder)
		if err == nil || !strings.Contains(err.Error(), "--kubeconfig") || !ok || coder.ExitCode() != input.ExitCode {
			t.Errorf("Config(%q) = %v, want a bad-input error naming --kubeconfig", path, err)
		}
	}
}
