package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/certificate/csr"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/pki"
)

// CSRFor is the CertificateSigningRequest an agent creates for t of the
// cluster namespace/name: only the public request, the signer and usages
// of t's kind, and annotations naming the cluster and the target. The
// name is generated, so every attempt is a CSR of its own.
func CSRFor(namespace, name string, t pki.Target, csrPEM []byte) *certificatesv1.CertificateSigningRequest {
	signer := v1alpha1.SignerFor(t.Kind.Name)
	prefix := strings.NewReplacer("/", "-", ".", "-", ":", "-").Replace(strings.ToLower(name + "-" + t.ID))
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: prefix + "-",
			Annotations:  map[string]string{v1alpha1.AnnotationCluster: namespace + "/" + name, v1alpha1.AnnotationTarget: t.ID},
		},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: csrPEM, SignerName: signer, Usages: v1alpha1.Usages(signer)},
	}
}

// Permanent reports whether err from the apiserver will not go away by
// trying again: the request is refused, not the apiserver away.
func Permanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) || apierrors.IsAlreadyExists(err)
}

// RequestCertificate creates req, retrying with backoff while the
// apiserver cannot be reached, tells created its name, and waits until
// it is issued (client-go's csr.WaitForCertificate: a watch that
// survives the apiserver going away and coming back). A Denied or Failed
// CSR is an error carrying the signer's reason.
func RequestCertificate(ctx context.Context, cs kubernetes.Interface, req *certificatesv1.CertificateSigningRequest, backoff wait.Backoff, unreachable func(error), created func(*certificatesv1.CertificateSigningRequest)) ([]byte, error) {
	var made *certificatesv1.CertificateSigningRequest
	err := backoff.DelayFunc().Until(ctx, true, false, func(ctx context.Context) (bool, error) {
		var err error
		made, err = cs.CertificatesV1().CertificateSigningRequests().Create(ctx, req, metav1.CreateOptions{})
		switch {
		case err == nil:
			return true, nil
		case Permanent(err):
			return false, err
		}
		if unreachable != nil {
			unreachable(err)
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("create CSR for %s: %w", req.Annotations[v1alpha1.AnnotationTarget], err)
	}
	if created != nil {
		created(made)
	}
	cert, err := csr.WaitForCertificate(ctx, cs, made.Name, made.UID)
	if err != nil {
		return nil, fmt.Errorf("CSR %s: %w", made.Name, err)
	}
	if len(cert) == 0 {
		return nil, fmt.Errorf("CSR %s: approved, but no certificate in its status", made.Name)
	}
	return cert, nil
}

// DefaultBackoff is how the agent and the CLI retry an apiserver that is
// away: from a second, doubling, up to two minutes between tries, with
// jitter so that a fleet of agents does not knock at once when it comes
// back; it never gives up on its own (the context does).
var DefaultBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 2 * time.Minute}
