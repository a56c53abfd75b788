package controller

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
)

// authorities loads each cluster's CA from its Secret, and again only
// when the Secret changes: opening a token (a PKCS#11 login) per CSR
// would cost more than the signing. Secrets are read with the API
// reader, not a cache: RBAC grants get on the one CA Secret, never list
// or watch on every Secret of the namespace.
type authorities struct {
	reader client.Reader
	mu     sync.Mutex
	loaded map[types.NamespacedName]loadedCA
}

type loadedCA struct {
	version string
	ca      *ca.CA
}

// get is the CA of cluster name in ns. A key URI in the Secret is
// opened as the CLI opens ca.key.uri (ca.ParseStore): the PIN from the
// URI's pin-source or ETCDPKI_PKCS11_PIN in the controller's environment.
func (a *authorities) get(ctx context.Context, ns, name string) (*ca.CA, error) {
	key := types.NamespacedName{Namespace: ns, Name: v1alpha1.CASecretName(name)}
	var s corev1.Secret
	if err := a.reader.Get(ctx, key, &s); err != nil {
		return nil, fmt.Errorf("CA Secret %s: %w", key, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.loaded[key]; ok && l.version == s.ResourceVersion {
		return l.ca, nil
	}
	where := "Secret " + key.String() + " "
	var keyPEM, uri []byte
	if u, ok := s.Data[v1alpha1.SecretKeyURI]; ok {
		uri = u
	} else {
		keyPEM = s.Data[v1alpha1.SecretKey]
	}
	c, err := ca.ParseStore(s.Data[v1alpha1.SecretCert], keyPEM, uri, where+v1alpha1.SecretCert, where+v1alpha1.SecretKey, where+v1alpha1.SecretKeyURI)
	if err != nil {
		return nil, err
	}
	if a.loaded == nil {
		a.loaded = map[types.NamespacedName]loadedCA{}
	}
	a.loaded[key] = loadedCA{version: s.ResourceVersion, ca: c}
	return c, nil
}
