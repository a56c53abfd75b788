//go:build !cgo || nopkcs11

package ca

import (
	"crypto"

	"github.com/etcdpki/etcdpki/cluster"
)

// PKCS11Compiled says whether this build can use a CA key in a PKCS#11
// token: not this one, built without cgo or with the nopkcs11 tag. File
// CA keys work as ever.
const PKCS11Compiled = false

func openTokenKey(u *cluster.PKCS11URI, _ string, _ crypto.PublicKey) (crypto.Signer, error) {
	return nil, notCompiled(u)
}

func createTokenKey(u *cluster.PKCS11URI, _ cluster.KeySpec) (crypto.Signer, error) {
	return nil, notCompiled(u)
}

func relabelTokenKey(u *cluster.PKCS11URI, _ string, _ crypto.PublicKey, _ string) error {
	return notCompiled(u)
}

func describeTokenKey(u *cluster.PKCS11URI, _ string, _ crypto.PublicKey) (TokenKey, error) {
	return TokenKey{}, notCompiled(u)
}

func labelPublicKey(u *cluster.PKCS11URI, _ string) (crypto.PublicKey, error) {
	return nil, notCompiled(u)
}
