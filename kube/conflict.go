package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
)

// conflictRetry is longer than client-go's DefaultRetry (5 tries in about
// 50 ms): every agent of a cluster and the controller write one status,
// and a few writers at once, or one on a busy machine, exhaust that
// (TestUpdateStatusMergesConcurrentWriters). 30 tries with jitter reach
// about 20 s.
var conflictRetry = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: time.Second}

// RetryOnConflict runs fn, again on a conflict, for about 20 s. fn must
// read the object afresh and decide again each time. Every read-modify-
// write of an EtcdCluster or of a trust ConfigMap goes through it.
func RetryOnConflict(fn func() error) error {
	return retry.RetryOnConflict(conflictRetry, fn)
}

// UpdateField reads the EtcdCluster at key, lets decide compute from it
// the new value of the one field at path (write false: leave it), and
// writes that field only, provided it still holds the value read: a JSON
// patch with a test operation, which the apiserver runs against the
// stored object inside its own update loop. On a changed field it reads
// and decides again, as RetryOnConflict does.
//
// An Update carries the whole object's resourceVersion, which every
// status write of the controller and the agents moves, so a spec request
// on a busy cluster failed with "the object has been modified"
// (TestCARotationRequestSurvivesStatusWrites); this lock covers only the
// field decided on. The value tested is the stored JSON, read
// unstructured, not the typed value marshalled again: a timestamp written
// by hand with a fraction of a second would never compare equal after a
// round trip (TestUpdateFieldTestsTheStoredJSON). path's parent must exist (spec always does).
func UpdateField(ctx context.Context, r client.Reader, w client.Writer, key client.ObjectKey, path []string, decide func(*v1alpha1.EtcdCluster) (value any, write bool, err error)) error {
	pointer := "/" + strings.Join(path, "/")
	return RetryOnConflict(func() error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("EtcdCluster"))
		if err := r.Get(ctx, key, u); err != nil {
			return err
		}
		var ec v1alpha1.EtcdCluster
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ec); err != nil {
			return fmt.Errorf("EtcdCluster %s: %w", key, err)
		}
		value, write, err := decide(&ec)
		if err != nil || !write {
			return err
		}
		old, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		if err != nil {
			return fmt.Errorf("EtcdCluster %s: %s: %w", key, pointer, err)
		}
		b, err := json.Marshal([]map[string]any{
			{"op": "test", "path": pointer, "value": old},
			{"op": "add", "path": pointer, "value": value},
		})
		if err != nil {
			return fmt.Errorf("JSON patch of %s: %w", pointer, err)
		}
		err = w.Patch(ctx, u, client.RawPatch(types.JSONPatchType, b))
		if testFailed(err) {
			return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("etcdclusters").GroupResource(), key.Name, fmt.Errorf("%s was changed by another writer", pointer))
		}
		return err
	})
}

// testFailed tells whether err is the apiserver's answer to a JSON patch
// it could not apply, here a failed test operation (the add cannot fail:
// spec always exists). The apiserver drops the patch library's message
// and sends a bare 422 Invalid with no kind and no causes
// (apierrors.NewGenericServerResponse); the schema's refusal of the new
// value is a 422 too, but names the kind and the fields, and must not be
// retried.
func testFailed(err error) bool {
	var st apierrors.APIStatus
	if err == nil || !apierrors.IsInvalid(err) || !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d == nil || (d.Kind == "" && len(d.Causes) == 0)
}
