package kube

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/testharness/kubetest"
)

// createBare creates an EtcdCluster as a hand-written manifest would: no
// spec.ca and no spec.revocations, which a typed Create would write as {}.
func createBare(t *testing.T, c client.Client, ns, name string) client.ObjectKey {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "EtcdCluster",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     map[string]any{"name": name, "nodes": []any{map[string]any{"name": "n1", "ips": []any{"127.0.0.1"}}}},
	}}
	if err := c.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "ca"); found {
		t.Fatal("the apiserver stored spec.ca although the manifest had none: this test would not test the absent field")
	}
	return client.ObjectKey{Namespace: ns, Name: name}
}

// A spec field written through UpdateField lands while the status is
// written as fast as the apiserver takes it: only a change of the field
// itself makes it decide again. Each call must succeed on its own, not
// after the caller retries.
func TestUpdateFieldSurvivesStatusWrites(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	key := createBare(t, e.Client, e.Namespace(t, "field"), "prod")
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	writes := 0
	wg.Go(func() {
		for i := 0; wctx.Err() == nil; i++ {
			var cur v1alpha1.EtcdCluster
			if e.Client.Get(wctx, key, &cur) == nil {
				cur.Status.ObservedGeneration = int64(i)
				if e.Client.Status().Update(wctx, &cur) == nil {
					writes++
				}
			}
		}
	})
	for i := range 20 {
		id := "r" + strings.Repeat("x", i)
		err := UpdateField(ctx, e.Client, e.Client, key, []string{"spec", "ca"}, func(ec *v1alpha1.EtcdCluster) (any, bool, error) {
			ca := ec.Spec.CA
			ca.Rotation = &v1alpha1.CARotationSpec{ID: id}
			return ca, true, nil
		})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		var got v1alpha1.EtcdCluster
		if err := e.Client.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.CA.Rotation == nil || got.Spec.CA.Rotation.ID != id {
			t.Fatalf("write %d: spec.ca.rotation %+v, want id %s", i, got.Spec.CA.Rotation, id)
		}
	}
	stop()
	wg.Wait()
	if writes == 0 {
		t.Fatal("no status write landed: the test raced nothing")
	}
}

// A writer that changes the field between UpdateField's read and its
// write is never overwritten: the test operation fails, UpdateField reads
// again and decides from the other writer's value.
func TestUpdateFieldDecidesAgainWhenTheFieldChanged(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	key := createBare(t, e.Client, e.Namespace(t, "field"), "prod")
	calls := 0
	err := UpdateField(ctx, e.Client, e.Client, key, []string{"spec", "revocations"}, func(ec *v1alpha1.EtcdCluster) (any, bool, error) {
		calls++
		if calls == 1 {
			// Another writer appends its entry after this read.
			var other v1alpha1.EtcdCluster
			if err := e.Client.Get(ctx, key, &other); err != nil {
				return nil, false, err
			}
			other.Spec.Revocations = append(other.Spec.Revocations, v1alpha1.RevocationSpec{Serial: "0a", Reason: "keyCompromise"})
			if err := e.Client.Update(ctx, &other); err != nil {
				return nil, false, err
			}
		}
		return append(ec.Spec.Revocations, v1alpha1.RevocationSpec{Serial: "0b", Reason: "superseded"}), true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("decide ran %d times, want 2 (once more after the other writer)", calls)
	}
	var got v1alpha1.EtcdCluster
	if err := e.Client.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	var serials []string
	for _, r := range got.Spec.Revocations {
		serials = append(serials, r.Serial)
	}
	if strings.Join(serials, ",") != "0a,0b" {
		t.Errorf("spec.revocations serials %v, want [0a 0b]: the other writer's entry was lost", serials)
	}
}

// A value the CRD's schema refuses is a 422 too, like a failed test
// operation, but it is returned at once, never retried as a conflict.
func TestUpdateFieldReturnsAnInvalidValue(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	key := createBare(t, e.Client, e.Namespace(t, "field"), "prod")
	calls := 0
	err := UpdateField(ctx, e.Client, e.Client, key, []string{"spec", "ca"}, func(ec *v1alpha1.EtcdCluster) (any, bool, error) {
		calls++
		return v1alpha1.CASpec{KeyAlgorithm: "dsa"}, true, nil
	})
	if !apierrors.IsInvalid(err) || calls != 1 {
		t.Fatalf("UpdateField = %v after %d decisions, want the apiserver's Invalid after 1", err, calls)
	}
	var got v1alpha1.EtcdCluster
	if err := e.Client.Get(ctx, key, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.CA.KeyAlgorithm != "" {
		t.Errorf("spec.ca.keyAlgorithm %q written, want nothing", got.Spec.CA.KeyAlgorithm)
	}
}

// The value tested is the stored JSON, not the typed value marshalled
// again: a hand-written manifest's timestamp with a fraction of a second
// (which metav1.Time would marshal without it) must not read as another
// writer's change, nor must an empty list. Each write must land at the
// first decision. (Testing the typed value fails the timestamp case.)
func TestUpdateFieldTestsTheStoredJSON(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "field")
	for _, stored := range [][]any{
		{},
		{map[string]any{"serial": "0a", "reason": "keyCompromise", "requestedAt": "2026-12-07T08:00:00.5Z"}},
	} {
		name := fmt.Sprintf("prod-%d", len(stored))
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "EtcdCluster",
			"metadata": map[string]any{"namespace": ns, "name": name},
			"spec":     map[string]any{"name": name, "nodes": []any{map[string]any{"name": "n1", "ips": []any{"127.0.0.1"}}}, "revocations": stored},
		}}
		if err := e.Client.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := unstructured.NestedSlice(u.Object, "spec", "revocations"); len(got) != len(stored) {
			t.Fatalf("%s: the apiserver stored spec.revocations %v, want %v: this test would not test it", name, got, stored)
		}
		calls := 0
		err := UpdateField(ctx, e.Client, e.Client, client.ObjectKeyFromObject(u), []string{"spec", "revocations"}, func(ec *v1alpha1.EtcdCluster) (any, bool, error) {
			calls++
			return append(ec.Spec.Revocations, v1alpha1.RevocationSpec{Serial: "0b", Reason: "superseded"}), true, nil
		})
		if err != nil || calls != 1 {
			t.Errorf("%s (stored %v): UpdateField = %v after %d decisions, want nil after 1", name, stored, err, calls)
		}
	}
}
