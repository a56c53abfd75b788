package v1alpha1

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdpki/etcdpki/cluster"
)

// fill sets every field of v (a pointer to a struct) to a value that is
// not its zero, recursively, so that a field one schema has and the other
// lacks shows up in the round trip.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).CanSet() { // time.Time's fields are not ours to fill
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.String:
		v.SetString("x")
	case reflect.Int:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	}
}

func strict(t *testing.T, data []byte, into any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("decoding %T: %v", into, err)
	}
}

// The EtcdCluster spec is the spec file's schema: every field of each
// survives a round trip through the other, under the same name.
func TestSpecMirrorsTheFile(t *testing.T) {
	var f cluster.File
	fill(reflect.ValueOf(&f).Elem())
	fromFile, err := json.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	var s EtcdClusterSpec
	strict(t, fromFile, &s)
	back, _ := json.Marshal(&s)
	if !bytes.Equal(fromFile, back) {
		t.Errorf("file → EtcdCluster spec lost fields:\n file %s\n spec %s", fromFile, back)
	}

	var s2 EtcdClusterSpec
	fill(reflect.ValueOf(&s2).Elem())
	if s2.Revocations == nil || s2.CA.Rotation == nil {
		t.Fatal("fill left the fields outside the file empty")
	}
	fromSpec, _ := json.Marshal(s2.File())
	var f2 cluster.File
	strict(t, fromSpec, &f2)
	back2, _ := json.Marshal(&f2)
	if !bytes.Equal(fromSpec, back2) {
		t.Errorf("EtcdCluster spec → file lost fields:\n spec %s\n file %s", fromSpec, back2)
	}
	if got, err := SpecFromFile(&f); err != nil || !reflect.DeepEqual(got, s) {
		t.Errorf("SpecFromFile = %+v, %v; want %+v", got, err, s)
	}
}

func TestClusterValidatesWithTheSpecParser(t *testing.T) {
	ok := &EtcdCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}, Spec: EtcdClusterSpec{
		Name: "prod", PKIDir: "/tmp/pki",
		Nodes:       []NodeSpec{{Name: "etcd-1", IPs: []string{"127.0.0.1"}}, {Name: "etcd-2", IPs: []string{"127.0.0.2"}}},
		Revocations: []RevocationSpec{{Serial: "0a", Reason: "keyCompromise"}},
		CA:          CASpec{Rotation: &CARotationSpec{ID: "r1"}},
	}}
	s, err := ok.Cluster(cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "prod" || len(s.Nodes) != 2 || s.Leaf.RenewBefore != cluster.DefaultRenewBefore {
		t.Errorf("spec = %+v", s)
	}
	bad := ok.DeepCopy()
	bad.Spec.Nodes[1].IPs = []string{"127.0.0.1"}
	_, err = bad.Cluster(cluster.Options{})
	if err == nil || !strings.Contains(err.Error(), "EtcdCluster ns/c") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("a duplicate IP: err = %v, want the object and the IP named", err)
	}
	bad = ok.DeepCopy()
	bad.Spec.Certs.Validity = "forever"
	if _, err = bad.Cluster(cluster.Options{}); err == nil || !strings.Contains(err.Error(), "validity") {
		t.Errorf("a bad validity: err = %v, want the field named", err)
	}
}

func TestObserveNeverGoesBack(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	var s EtcdClusterStatus
	s.Observe(CertificateStatus{ID: "n2/etcd-server", Serial: "aa", InEffect: true, ProvenAt: at(0)})
	s.Observe(CertificateStatus{ID: "n1/etcd-server", Serial: "bb", InEffect: true, ProvenAt: at(0)})
	if s.Certificates[0].ID != "n1/etcd-server" {
		t.Errorf("not sorted by ID: %+v", s.Certificates)
	}
	// An agent's report after its switch.
	s.Observe(CertificateStatus{ID: "n2/etcd-server", Serial: "cc", InEffect: true, ProvenAt: at(2 * time.Second), RenewedAt: at(time.Second), ProvenBy: ProvenByAgent})
	// A probe that began before the switch and is written after.
	s.Observe(CertificateStatus{ID: "n2/etcd-server", Serial: "aa", InEffect: true, ProvenAt: at(time.Second / 2), ProvenBy: ProvenByController})
	c, _ := s.Certificate("n2/etcd-server")
	if c.Serial != "cc" || c.ProvenBy != ProvenByAgent {
		t.Errorf("a stale probe overwrote the agent's report: %+v", c)
	}
	// A later probe replaces it but keeps RenewedAt.
	s.Observe(CertificateStatus{ID: "n2/etcd-server", Serial: "cc", InEffect: true, ProvenAt: at(time.Minute), ProvenBy: ProvenByController})
	c, _ = s.Certificate("n2/etcd-server")
	if c.ProvenBy != ProvenByController || c.RenewedAt == nil || !c.RenewedAt.Equal(at(time.Second)) {
		t.Errorf("later probe: %+v, want RenewedAt kept", c)
	}
}

func TestRenewRequestRoundTrip(t *testing.T) {
	c := &EtcdCluster{}
	if r, err := c.Requested(); err != nil || !r.At.IsZero() {
		t.Fatalf("no annotation: %+v, %v", r, err)
	}
	at := time.Date(2026, 12, 7, 3, 0, 0, 123, time.UTC)
	c.Request(at, []string{"etcd-node-1", "kube-apiserver"})
	r, err := c.Requested()
	if err != nil || !r.At.Equal(at) || !reflect.DeepEqual(r.Targets, []string{"etcd-node-1", "kube-apiserver"}) {
		t.Errorf("requested = %+v, %v", r, err)
	}
	c.Request(at, nil)
	if r, _ := c.Requested(); r.Targets != nil {
		t.Errorf("all: targets = %v, want nil", r.Targets)
	}
	c.Annotations[AnnotationRenewRequestedAt] = "yesterday"
	if _, err := c.Requested(); err == nil || !strings.Contains(err.Error(), AnnotationRenewRequestedAt) {
		t.Errorf("bad time: err = %v", err)
	}
}
