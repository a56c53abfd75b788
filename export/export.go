// Package export hands a PKI made by init or adopt to a Kubernetes
// cluster, for the controller and the agents to run from there: the
// EtcdCluster (the spec file's fields), the CA Secret (the CA certificate
// and its key, or the key's pkcs11: URI when the key is in a token) and
// the trust ConfigMap (the CA certificate and the CRL).
//
// It reads the PKI only through package pki and writes only API objects.
// Everything it could refuse (a CA rotation in progress, a Secret holding
// another CA, an EtcdCluster of another cluster under the name, a trust
// ConfigMap whose CRL is newer than the PKI's and lacks a revocation of
// it) is checked before the first write, so a refusal changes nothing.
// Running it again updates the objects to the PKI; objects already equal
// to it are left alone.
package export

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// Options say where the objects go.
type Options struct {
	// Client writes the objects; its identity needs get, create and
	// update on EtcdClusters, Secrets and ConfigMaps in Namespace.
	Client client.Client
	// Namespace holds the three objects; it must exist.
	Namespace string
	// Out gets one line per object: created, updated or unchanged.
	Out io.Writer
	// DryRun sends every write as a server-side dry run: the apiserver
	// validates and admits it and stores nothing; the lines say "would".
	DryRun bool
}

// ManagedBy is the app.kubernetes.io/managed-by label on what export
// writes, so that `kubectl get -l` finds it.
const ManagedBy = "etcdpki"

// Action is what happened to one object.
type Action struct {
	// Kind and Name name the object (in Options.Namespace).
	Kind, Name string
	// Op is controllerutil's verdict: created, updated or unchanged.
	Op controllerutil.OperationResult
	// Line is what was printed for it.
	Line string
}

// Result lists the actions in the order they were taken.
type Result struct{ Actions []Action }

// source is what is read from the PKI: the CA, its CRL and the spec.
type source struct {
	inv     *pki.Inventory
	ca      *ca.CA
	crlDER  []byte
	crl     *pki.CRL
	cluster *v1alpha1.EtcdCluster
}

// Run exports the inventory's PKI: it reads the PKI, checks the cluster's
// objects, then creates or updates the CA Secret, the trust ConfigMap and
// last the EtcdCluster, so that a controller that sees the EtcdCluster
// finds its CA and trust already there.
func Run(ctx context.Context, inv *pki.Inventory, o Options) (*Result, error) {
	src, err := read(inv, o.Namespace)
	if err != nil {
		return nil, err
	}
	objs, err := checkCluster(ctx, o, src)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	c := o.Client
	if o.DryRun {
		c = client.NewDryRunClient(c)
	}
	for _, w := range objs.writes(src) {
		op, err := controllerutil.CreateOrUpdate(ctx, c, w.obj, w.mutate)
		if err != nil {
			return res, fmt.Errorf("export %s %s/%s: %w", w.kind, o.Namespace, w.obj.GetName(), err)
		}
		a := Action{Kind: w.kind, Name: w.obj.GetName(), Op: op}
		verb := string(op)
		if o.DryRun && op != controllerutil.OperationResultNone {
			verb = "would be " + verb
		}
		a.Line = fmt.Sprintf("%s %s %s/%s: %s", verb, w.kind, o.Namespace, a.Name, w.what)
		res.Actions = append(res.Actions, a)
		if _, err := fmt.Fprintln(o.Out, a.Line); err != nil {
			return res, err
		}
	}
	return res, nil
}

// read loads what is exported from the PKI and refuses a PKI that cannot
// be handed over as it is.
func read(inv *pki.Inventory, ns string) (*source, error) {
	if inv.Spec.Source == nil {
		return nil, input.Errorf("export needs the cluster's spec file (--spec FILE): the EtcdCluster's spec is that file")
	}
	name := inv.Spec.Name
	if errs := validation.IsDNS1123Subdomain(v1alpha1.TrustConfigMapName(name)); len(errs) > 0 {
		return nil, input.Errorf("%s: name %q cannot name the EtcdCluster: a Kubernetes object name is lower case letters, digits, '-' and '.' (%s)", specName(inv.Spec), name, errs[0])
	}
	if d, err := pki.CAKeyDisagreement(inv); err != nil {
		return nil, err
	} else if d != "" {
		return nil, input.Errorf("%s", d)
	}
	rot, err := pki.ReadCARotation(inv)
	if err != nil {
		return nil, err
	}
	if rot.InProgress() {
		return nil, input.Errorf("%s: a CA rotation is in progress (stage %s, the next CA in %s): finish it with etcdpki ca rotate before export, then run the next rotations through the controller (etcdpki ca rotate --kubeconfig)", inv.Spec.PKIDir, rot.Stage, inv.Paths.NextCADir())
	}
	if now := time.Now(); now.After(rot.Old.Cert.NotAfter) {
		// The controller could sign nothing with it that a member would
		// accept: the cluster needs the break-glass tool first.
		return nil, input.Errorf("%s: the CA expired on %s: recover the cluster with etcdpki rotate --recover (it makes a new CA) before export", inv.Paths.CACert(), rot.Old.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	der, crl, _, err := pki.ReadCACRL(inv.Paths)
	if err != nil {
		return nil, err
	}
	if crl == nil {
		return nil, input.Errorf("%s: does not exist: the trust ConfigMap carries the CA's CRL (etcdpki init writes it; etcdpki rotate writes it again)", inv.Paths.CRL())
	}
	if err := crl.List.CheckSignatureFrom(rot.Old.Cert); err != nil {
		return nil, input.Errorf("%s: not signed by the CA %s: %v", inv.Paths.CRL(), inv.Paths.CACert(), err)
	}
	ec, err := etcdCluster(inv, ns)
	if err != nil {
		return nil, err
	}
	return &source{inv: inv, ca: rot.Old, crlDER: der, crl: crl, cluster: ec}, nil
}

// etcdCluster is the EtcdCluster of the spec: the file's fields as
// written, but for what only means something on the admin host (pkiDir,
// and a local spec's data directories) made absolute, and the CA key's
// URI as the PKI records it, without a pin-value. It is validated as the
// controller will read it.
func etcdCluster(inv *pki.Inventory, ns string) (*v1alpha1.EtcdCluster, error) {
	s := inv.Spec
	spec, err := v1alpha1.SpecFromFile(s.Source)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", specName(s), err)
	}
	spec.PKIDir = s.PKIDir
	spec.CA.Key = ""
	if s.CA.Token != nil {
		spec.CA.Key = s.CA.Token.String()
	}
	for i := range spec.Nodes {
		if s.Local && spec.Nodes[i].DataDir != "" && i < len(s.Nodes) {
			spec.Nodes[i].DataDir = s.Nodes[i].DataDir
		}
	}
	ec := &v1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s.Name},
		Spec:       spec,
	}
	if _, err := ec.Cluster(cluster.Options{}); err != nil {
		return nil, input.Errorf("%s: the EtcdCluster made from it does not validate: %v", specName(s), err)
	}
	return ec, nil
}

// specName is how messages name the spec.
func specName(s *cluster.Spec) string {
	if s.File != "" {
		return s.File
	}
	return "the spec"
}

// caLine describes a CA for the printed lines and refusals.
func caLine(c *x509.Certificate) string {
	return fmt.Sprintf("CA %q serial %s, valid until %s", c.Subject.CommonName, pki.ShortSerial(certx.Serial(c)), c.NotAfter.UTC().Format("2006-01-02"))
}

// secretType is the CA Secret's type: kubernetes.io/tls for a key in it,
// Opaque for a key in a token, because the apiserver requires a tls.key
// in every kubernetes.io/tls Secret and that one holds no key at all.
func secretType(a *ca.CA) corev1.SecretType {
	if a.Token != nil {
		return corev1.SecretTypeOpaque
	}
	return corev1.SecretTypeTLS
}
