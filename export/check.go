package export

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// existing is what the cluster holds already, read before any write.
type existing struct {
	// keepCRL is the trust ConfigMap's CRL when it is newer than the
	// PKI's and holds every revocation of it: the controller signed it
	// after an earlier export, and going back would un-revoke nothing
	// but would move the CRL number backwards (RFC 5280 5.2.3).
	keepCRL []byte
	// keptNumber is that CRL's number.
	keptNumber *big.Int
}

// checkCluster reads the namespace and the three objects and refuses
// what export must not overwrite. It writes nothing.
func checkCluster(ctx context.Context, o Options, src *source) (*existing, error) {
	c, ns := o.Client, o.Namespace
	var n corev1.Namespace
	if err := c.Get(ctx, types.NamespacedName{Name: ns}, &n); apierrors.IsNotFound(err) {
		return nil, input.Errorf("--namespace %s: the namespace does not exist (create it first: kubectl create namespace %s)", ns, ns)
	} else if err != nil && !apierrors.IsForbidden(err) {
		// Forbidden: an identity may write in a namespace it may not
		// read; the writes below say what is missing then.
		return nil, fmt.Errorf("read namespace %s: %w", ns, err)
	}
	name := src.cluster.Name
	var ec v1alpha1.EtcdCluster
	if err := get(ctx, c, ns, name, &ec); err != nil {
		return nil, err
	} else if ec.UID != "" {
		if theirs := clusterName(ec.Spec.Name); theirs != name {
			return nil, input.Errorf("EtcdCluster %s/%s exists for another cluster (its spec.name is %q, this spec's %q): refusing to replace it", ns, name, theirs, name)
		}
	}
	var s corev1.Secret
	if err := get(ctx, c, ns, v1alpha1.CASecretName(name), &s); err != nil {
		return nil, err
	} else if s.UID != "" {
		if err := sameCA(&s, src); err != nil {
			return nil, err
		}
	}
	var cm corev1.ConfigMap
	if err := get(ctx, c, ns, v1alpha1.TrustConfigMapName(name), &cm); err != nil {
		return nil, err
	}
	return trustCRL(&cm, src)
}

// get reads an object, leaving it empty (no UID) when it does not exist.
func get(ctx context.Context, c client.Client, ns, name string, obj client.Object) error {
	err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("read %T %s/%s: %w", obj, ns, name, err)
	}
	return nil
}

// clusterName is the name a spec.name means ("" is the default).
func clusterName(n string) string {
	if n == "" {
		return "etcd"
	}
	return n
}

// sameCA refuses a CA Secret that holds another CA than the PKI's: the
// same public key is the same CA (its signatures verify the same
// leaves), anything else would cut every member off from its clients
// the moment the controller signed with it.
func sameCA(s *corev1.Secret, src *source) error {
	ours := src.ca.Cert
	where := fmt.Sprintf("Secret %s/%s", s.Namespace, s.Name)
	certs, err := certx.ParseCertificates(s.Data[v1alpha1.SecretCert])
	if err != nil || len(certs) == 0 {
		return input.Errorf("%s exists and holds no CA certificate in %s: refusing to replace it (delete it if it is not in use)", where, v1alpha1.SecretCert)
	}
	theirs := certs[0]
	if !certx.KeyMatches(theirs, ours.PublicKey) {
		return input.Errorf("%s holds a different CA (%s, not %s from %s): refusing to replace it; delete it first if this PKI is to take over", where, caLine(theirs), caLine(ours), src.inv.Paths.CACert())
	}
	if want := secretType(src.ca); s.Type != want {
		return input.Errorf("%s has type %s, and the CA now needs %s (a Secret's type cannot change): delete it and export again", where, s.Type, want)
	}
	return nil
}

// trustCRL decides the trust ConfigMap's CRL: the PKI's, unless the
// ConfigMap's own is a later CRL of the same CA that revokes everything
// the PKI's does. One that is later and lacks a revocation is refused:
// neither CRL may win without someone signing a new one.
func trustCRL(cm *corev1.ConfigMap, src *source) (*existing, error) {
	data := cm.BinaryData[v1alpha1.TrustCRL]
	if cm.UID == "" || len(data) == 0 {
		return &existing{}, nil
	}
	theirs, err := pki.ParseCRL(data)
	if err != nil || theirs.CheckSignatureFrom(src.ca.Cert) != nil || theirs.Number == nil || src.crl.Number == nil ||
		theirs.Number.Cmp(src.crl.Number) <= 0 {
		return &existing{}, nil
	}
	revoked := map[string]bool{}
	for _, e := range theirs.RevokedCertificateEntries {
		revoked[fmt.Sprintf("%x", e.SerialNumber)] = true
	}
	var missing []string
	for _, e := range src.crl.List.RevokedCertificateEntries {
		if s := fmt.Sprintf("%x", e.SerialNumber); !revoked[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, input.Errorf("ConfigMap %s/%s: its CRL (number %s) is newer than %s (number %s) but does not revoke %s: refusing to replace either; revoke them through the cluster", cm.Namespace, cm.Name, theirs.Number, src.inv.Paths.CRL(), src.crl.Number, strings.Join(missing, ", "))
	}
	return &existing{keepCRL: data, keptNumber: theirs.Number}, nil
}
