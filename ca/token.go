package ca

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// KeyURIFile is what a CA store holds instead of ca.key when the CA key is
// in a PKCS#11 token: the key's URI (never its PIN), so that every command
// reading the PKI directory finds the key without the spec, and certs
// list can say where it is.
const KeyURIFile = "ca.key.uri"

// KeyFile is the CA key's file name when the key is a file.
const KeyFile = "ca.key"

// maxPINFile caps how much of a pin-source file is read: a PIN is a few
// bytes, and a path naming /dev/zero by mistake must not hang the run.
const maxPINFile = 4096

// InToken reports whether the CA's key is in a PKCS#11 token.
func (c *CA) InToken() bool { return c.Token != nil }

// KeyWhere says where the CA key is, for certs list and verify: the
// token and the key's label, or keyPath for a file key.
func (c *CA) KeyWhere(keyPath string) string {
	if c.Token != nil {
		return c.Token.Where()
	}
	return "file " + keyPath
}

// StoreFiles are the files of the CA's atomic store besides ca.crt: the
// key (0400), or for a token key the URI that names it.
func (c *CA) StoreFiles() []atomicdir.File {
	if c.Token != nil {
		return []atomicdir.File{{Name: KeyURIFile, Data: []byte(c.Token.String() + "\n"), Mode: atomicdir.CertMode}}
	}
	return []atomicdir.File{{Name: KeyFile, Data: c.KeyPEM, Mode: atomicdir.CAKeyMode}}
}

// WithLabel is this CA with its token key's URI naming another label (a
// retired key's, for its backup); a file CA is returned as it is.
func (c *CA) WithLabel(label string) *CA {
	if c.Token == nil {
		return c
	}
	cp := *c
	cp.Token = c.Token.WithObject(label)
	return &cp
}

// nextSuffix marks the label a next CA's key is made under, until that
// CA is in effect.
const nextSuffix = "-next"

// RetiredLabel is the label a replaced CA key keeps in the token: it is
// relabelled, never deleted, so the old CA stays restorable.
func RetiredLabel(label, serial string) string {
	if len(serial) > 16 {
		serial = serial[:16]
	}
	return label + "-retired-" + serial
}

// CreateNext makes the CA that replaces current (a CA rotation, or a
// recovery from an expired CA) from the spec's CA settings. With a token
// (the spec's, else current's) its key is made under the label
// LABEL-next, so the key in effect is never reused or overwritten; a key
// already under that label, left by a run that died before writing the
// next CA, is used. current's own key is first given its label back, in
// case a run died between a switch and Settle.
func CreateNext(spec cluster.CA, current *CA, now time.Time) (*CA, error) {
	if current != nil && current.Token != nil {
		if err := Settle(current); err != nil {
			return nil, err
		}
		if spec.Token == nil {
			spec.Token = current.Token
		}
	}
	if spec.Token != nil {
		spec.Token = spec.Token.WithObject(spec.Token.Object + nextSuffix)
	}
	return Create(spec, now)
}

// InEffect is next as it is named once it is the CA in effect: for a
// token key, under the label it replaced (LABEL-next becomes LABEL), so
// that the spec's URI always names the CA in effect.
func InEffect(next *CA) *CA {
	if next.Token == nil || !strings.HasSuffix(next.Token.Object, nextSuffix) {
		return next
	}
	return next.WithLabel(strings.TrimSuffix(next.Token.Object, nextSuffix))
}

// Retire gives a replaced CA's token key its retired label and returns
// the CA as its backup names it; a file CA is returned as it is (its key
// file goes to the backup). Run before the switch: until then the key is
// found by its public key whatever its label.
func Retire(old *CA) (*CA, error) {
	if old.Token == nil {
		return old, nil
	}
	retired := old.WithLabel(RetiredLabel(strings.TrimSuffix(old.Token.Object, nextSuffix), fmt.Sprintf("%x", old.Cert.SerialNumber)))
	if err := Settle(retired); err != nil {
		return nil, fmt.Errorf("retire the old CA key: %w", err)
	}
	return retired, nil
}

// Settle gives the CA's token key the label its URI names, if it has
// another: after a switch to a new CA, whose key still carries its
// LABEL-next. Idempotent, so a run killed around a switch is finished by
// the next one.
func Settle(c *CA) error {
	if c.Token == nil {
		return nil
	}
	if !PKCS11Compiled {
		return notCompiled(c.Token)
	}
	pin, err := readPIN(c.Token)
	if err != nil {
		return err
	}
	return relabelTokenKey(c.Token, pin, c.Cert.PublicKey, c.Token.Object)
}

// ParseStore loads a CA from its store's files: certPEM and either keyPEM
// (ca.key) or uriData (ca.key.uri, the key in a token). The token is
// opened and its key matched to the certificate, so a token that is
// absent, a wrong PIN or a module that does not load fails here, before a
// command writes anything.
func ParseStore(certPEM, keyPEM, uriData []byte, certPath, keyPath, uriPath string) (*CA, error) {
	if uriData == nil {
		return ParseFiles(certPEM, keyPEM, certPath, keyPath)
	}
	u, err := cluster.ParsePKCS11URI(strings.TrimSpace(string(uriData)), false)
	if err != nil {
		return nil, input.Errorf("%s: %v", uriPath, err)
	}
	return OpenToken(certPEM, certPath, u)
}

// OpenToken loads a CA whose key is in a token: the certificate from
// certPEM, the key the one in the token that matches it.
func OpenToken(certPEM []byte, certPath string, u *cluster.PKCS11URI) (*CA, error) {
	if !PKCS11Compiled {
		return nil, notCompiled(u)
	}
	cert, err := checkCACert(certPEM, certPath)
	if err != nil {
		return nil, err
	}
	pin, err := readPIN(u)
	if err != nil {
		return nil, err
	}
	key, err := openTokenKey(u, pin, cert.PublicKey)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: certPEM, Token: u, key: key}, nil
}

// TokenKey describes the private key object a token holds for a CA: what
// the done-when checks and verify look at.
type TokenKey struct {
	Label       string
	Extractable bool
	Sensitive   bool
}

// DescribeTokenKey finds c's key in its token and reads its attributes.
func DescribeTokenKey(c *CA) (TokenKey, error) {
	if c.Token == nil {
		return TokenKey{}, errors.New("the CA key is a file, not in a token")
	}
	if !PKCS11Compiled {
		return TokenKey{}, notCompiled(c.Token)
	}
	pin, err := readPIN(c.Token)
	if err != nil {
		return TokenKey{}, err
	}
	return describeTokenKey(c.Token, pin, c.Cert.PublicKey)
}

// TokenPublicKey is the public key of the key pair under u's label, nil
// when the token holds none: what a killed init left, read without
// making anything.
func TokenPublicKey(u *cluster.PKCS11URI) (crypto.PublicKey, error) {
	if !PKCS11Compiled {
		return nil, notCompiled(u)
	}
	pin, err := readPIN(u)
	if err != nil {
		return nil, err
	}
	return labelPublicKey(u, pin)
}

// readPIN reads the token's PIN from the URI's pin-source file, or from
// the PINEnv variable. A PIN file others may read is refused, as ssh
// refuses such a key.
func readPIN(u *cluster.PKCS11URI) (string, error) {
	if u.PINValue != "" {
		return u.PINValue, nil
	}
	if u.PINSource == "" {
		pin, ok := os.LookupEnv(cluster.PINEnv)
		if !ok || pin == "" {
			return "", input.Errorf("%s: no PIN: give pin-source=file:/PATH in the URI or set %s", u.Where(), cluster.PINEnv)
		}
		return pin, nil
	}
	data, st, err := regular.Read(u.PINSource, maxPINFile)
	if err != nil {
		return "", input.Errorf("pin-source %s: %v", u.PINSource, unwrapPath(err))
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", input.Errorf("pin-source %s: mode %04o lets others read the PIN (chmod 0600 or 0400)", u.PINSource, st.Mode().Perm())
	}
	pin := strings.TrimRight(string(data), "\r\n")
	if pin == "" {
		return "", input.Errorf("pin-source %s: empty", u.PINSource)
	}
	return pin, nil
}

// unwrapPath is pathx.UnwrapPath: the cause, for messages that name
// the file themselves.
func unwrapPath(err error) error { return pathx.UnwrapPath(err) }

// notCompiled is what every token operation answers in a build without
// PKCS#11: the operator's URI may be right, this binary cannot use it
// (exit 2, before anything is written).
func notCompiled(u *cluster.PKCS11URI) error {
	return input.Errorf("CA key %s: PKCS#11 is not compiled into this etcdpki (built without cgo or with the nopkcs11 tag); use a build with cgo", u.Where())
}

// tokenFailure is a token that cannot be used (absent, wrong PIN, module
// not loadable, no such key): a failed operation, exit 1, in one line
// that names the key.
func tokenFailure(u *cluster.PKCS11URI, format string, args ...any) error {
	return fmt.Errorf("CA key %s: %s", u.Where(), fmt.Sprintf(format, args...))
}

// publicEqual compares public keys of any type.
func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
