package request

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/runner"
)

// TestCARotationRequestSurvivesStatusWrites: the controller and the
// agents write the EtcdCluster's status all the time, and each write
// moves its resourceVersion. `ca rotate --kubeconfig` read the object and
// updated it once, so a status write in between failed it with "the
// object has been modified" (seen in e2e under load); it reads and
// decides again on a conflict.
func TestCARotationRequestSurvivesStatusWrites(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "etcd-system")
	var f cluster.File
	if err := yaml.Unmarshal([]byte("name: etcd-prod\nnodes:\n  - {name: etcd-1, ips: [127.0.0.1], clientPort: 1, peerPort: 2}\n"), &f); err != nil {
		t.Fatal(err)
	}
	spec, err := v1alpha1.SpecFromFile(&f)
	if err != nil {
		t.Fatal(err)
	}
	ec := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "etcd-prod"}, Spec: spec}
	if err := e.Client.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		// A status write as fast as the apiserver takes them.
		for i := 0; wctx.Err() == nil; i++ {
			var cur v1alpha1.EtcdCluster
			if e.Client.Get(wctx, client.ObjectKeyFromObject(ec), &cur) == nil {
				cur.Status.ObservedGeneration = int64(i)
				_ = e.Client.Status().Update(wctx, &cur)
			}
		}
	})
	c, err := client.NewWithWatch(e.Config, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		id := "r" + string(rune('0'+i))
		// No controller answers: the request is what is tested, and the
		// wait ends at its timeout.
		_, err := RunCARotation(ctx, CAOptions{Client: c, Namespace: ns, Cluster: "etcd-prod", ID: id, Timeout: time.Millisecond, Poll: time.Millisecond, Log: runner.NewLogger(io.Discard)})
		var got v1alpha1.EtcdCluster
		if gerr := e.Client.Get(ctx, client.ObjectKeyFromObject(ec), &got); gerr != nil {
			t.Fatal(gerr)
		}
		if got.Spec.CA.Rotation == nil || got.Spec.CA.Rotation.ID != id {
			t.Fatalf("request %d: spec.ca.rotation %+v, want id %s (RunCARotation: %v)", i, got.Spec.CA.Rotation, id, err)
		}
	}
	stop()
	wg.Wait()
}
