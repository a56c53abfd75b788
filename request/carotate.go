package request

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/kube"
	"github.com/etcdpki/etcdpki/runner"
)

// DefaultCATimeout bounds `ca rotate --kubeconfig`'s wait: two rolling
// restarts of every member and of each apiserver, one renewal of every
// certificate, each granted and waited for one at a time.
const DefaultCATimeout = 30 * time.Minute

// CAOptions say which EtcdCluster's CA to rotate.
type CAOptions struct {
	Client             client.WithWatch
	Namespace, Cluster string
	// ID names the rotation (spec.ca.rotation.id); "" makes one from
	// the time.
	ID      string
	Timeout time.Duration
	Log     *runner.Logger
	// Poll is how often the status is read; 500 ms if 0.
	Poll time.Duration
}

// CAResult is the rotation as the status last showed it.
type CAResult struct {
	ID     string
	Status v1alpha1.CARotationStatus
	Took   time.Duration
}

// RunCARotation is `etcdpki ca rotate --kubeconfig`: it sets
// spec.ca.rotation.id (unless a rotation is in progress: then it waits
// for that one) and follows status.caRotation until the stage is done,
// printing each stage and each host's proof as it appears.
func RunCARotation(ctx context.Context, o CAOptions) (*CAResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultCATimeout
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	start := time.Now()
	key := client.ObjectKey{Namespace: o.Namespace, Name: o.Cluster}
	id := o.ID
	if id == "" {
		id = time.Now().UTC().Format("20060102-150405")
	}
	var following *v1alpha1.CARotationStatus
	// The controller and the agents write the status all the time:
	// UpdateField locks spec.ca only, and decides again when another
	// request changed it.
	err := kube.UpdateField(ctx, o.Client, o.Client, key, []string{"spec", "ca"}, func(ec *v1alpha1.EtcdCluster) (any, bool, error) {
		following = nil
		if st := ec.Status.CARotation; st != nil && st.Stage != v1alpha1.CAStageDone && st.ID != "" {
			following = st
			return nil, false, nil
		}
		ca := ec.Spec.CA
		ca.Rotation = &v1alpha1.CARotationSpec{ID: id}
		return ca, true, nil
	})
	if apierrors.IsNotFound(err) {
		err = input.Errorf("--cluster %s: EtcdCluster %s/%s does not exist (etcdpki export creates it)", o.Cluster, o.Namespace, o.Cluster)
	} else if err != nil {
		err = fmt.Errorf("request CA rotation %s on EtcdCluster %s: %w", id, key, err)
	}
	switch {
	case err != nil:
		return nil, err
	case following != nil:
		id = following.ID
		o.Log.Step("ca rotate", o.Cluster).Info("CA rotation %s is in progress (stage %s): following it", id, following.Stage)
	default:
		o.Log.Step("ca rotate", o.Cluster).Info("CA rotation %s requested on EtcdCluster %s", id, key)
	}
	res := &CAResult{ID: id}
	err = followCARotation(ctx, o, key, id, res)
	res.Took = time.Since(start)
	return res, err
}

// followCARotation prints the rotation's progress until it is done.
func followCARotation(ctx context.Context, o CAOptions, key client.ObjectKey, id string, res *CAResult) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	seen := map[string]bool{}
	stage, msg := "", ""
	for {
		var ec v1alpha1.EtcdCluster
		if err := o.Client.Get(ctx, key, &ec); err == nil && ec.Status.CARotation != nil && ec.Status.CARotation.ID == id {
			st := *ec.Status.CARotation
			res.Status = st
			for _, p := range st.Proofs {
				if k := p.Stage + "/" + p.Host; !seen[k] {
					seen[k] = true
					how := "already showed it"
					if p.Restarted {
						how = "restarted"
					}
					o.Log.Step(p.Stage, p.Host).Done("%s: %s: %s: %s", p.Stage, p.Host, how, p.Proof)
				}
			}
			if st.Stage != stage {
				stage = st.Stage
				o.Log.Step(stage, o.Cluster).Info("stage %s", stage)
			}
			if st.Stage == v1alpha1.CAStageDone {
				o.Log.Step(stage, o.Cluster).Done("%s", st.Message)
				return nil
			}
			if st.Message != msg {
				msg = st.Message
				o.Log.Step(stage, o.Cluster).Info("%s", msg)
			}
		}
		select {
		case <-ctx.Done():
			return &CATimeoutError{Timeout: o.Timeout, Stage: stage, Message: msg}
		case <-time.After(o.Poll):
		}
	}
}

// CATimeoutError is the wait ending before the rotation was done; the
// rotation goes on in the controller.
type CATimeoutError struct {
	Timeout        time.Duration
	Stage, Message string
}

func (e *CATimeoutError) Error() string {
	return fmt.Sprintf("the CA rotation is not done after %s (stage %s: %s); it goes on in the controller: run again to follow it", e.Timeout, e.Stage, e.Message)
}
