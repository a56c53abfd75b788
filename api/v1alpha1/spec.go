package v1alpha1

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
)

// Cluster validates the spec with the same parser as a spec file (JSON is
// YAML, and the field names are the file's) and returns it. Errors name
// the object and the field, as a spec file's name the file and line.
func (c *EtcdCluster) Cluster(o cluster.Options) (*cluster.Spec, error) {
	data, err := json.Marshal(c.Spec.File())
	if err != nil {
		return nil, fmt.Errorf("EtcdCluster %s/%s: %w", c.Namespace, c.Name, err)
	}
	return cluster.Parse(data, "EtcdCluster "+c.Namespace+"/"+c.Name, o)
}

// File is the spec without what the spec file does not have: the
// revocations and the CA rotation request, which the controller acts on
// and the CLI keeps elsewhere.
func (s *EtcdClusterSpec) File() *EtcdClusterSpec {
	f := s.DeepCopy()
	f.Revocations = nil
	f.CA.Rotation = nil
	return f
}

// SpecFromFile is the EtcdCluster spec of a spec file's schema: the same
// fields, copied through JSON so that a field added to one and not the
// other fails TestSpecMirrorsTheFile rather than vanish.
func SpecFromFile(f *cluster.File) (EtcdClusterSpec, error) {
	var s EtcdClusterSpec
	data, err := json.Marshal(f)
	if err != nil {
		return s, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return s, dec.Decode(&s)
}

// RenewRequest is a renewal asked for on an EtcdCluster.
//
// +kubebuilder:object:generate=false
type RenewRequest struct {
	// At is when it was asked for; zero when there is none.
	At time.Time
	// Targets are names as pki.Select takes them; nil means all.
	Targets []string
}

// Requested reads the renewal request from the annotations. A malformed
// timestamp is an error: it came from a person or a script, and ignoring
// it would look like a renewal that never happens.
func (c *EtcdCluster) Requested() (RenewRequest, error) {
	at := c.Annotations[AnnotationRenewRequestedAt]
	if at == "" {
		return RenewRequest{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return RenewRequest{}, fmt.Errorf("EtcdCluster %s/%s: annotation %s: %q is not an RFC 3339 time", c.Namespace, c.Name, AnnotationRenewRequestedAt, at)
	}
	r := RenewRequest{At: t}
	if v := strings.TrimSpace(c.Annotations[AnnotationRenewTargets]); v != "" && v != RenewAll {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				r.Targets = append(r.Targets, n)
			}
		}
	}
	return r, nil
}

// Request stamps a renewal request on the EtcdCluster's annotations, as
// kubectl rollout restart does on a Deployment; nil targets ask for all.
func (c *EtcdCluster) Request(at time.Time, targets []string) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[AnnotationRenewRequestedAt] = at.UTC().Format(time.RFC3339Nano)
	c.Annotations[AnnotationRenewTargets] = RenewAll
	if len(targets) > 0 {
		c.Annotations[AnnotationRenewTargets] = strings.Join(targets, ",")
	}
}
