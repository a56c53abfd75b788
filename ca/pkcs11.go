//go:build cgo && !nopkcs11

package ca

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
)

// PKCS11Compiled says whether this build can use a CA key in a PKCS#11
// token: it needs cgo (the module is a C library).
const PKCS11Compiled = true

// session opens the module, finds the token and logs in. Each operation
// opens its own and closes it: a CA is held by many commands and tests
// that never close it, and a session per signature costs little next to
// what etcdpki signs (a dozen certificates a run) while it notices a
// token pulled out between two signatures.
func session(u *cluster.PKCS11URI, pin string) (*crypto11.Context, error) {
	if _, err := os.Stat(u.ModulePath); err != nil {
		return nil, tokenFailure(u, "PKCS#11 module %s cannot be loaded: %v", u.ModulePath, unwrapPath(err))
	}
	cfg := &crypto11.Config{Path: u.ModulePath, TokenLabel: u.Token, TokenSerial: u.Serial, SlotNumber: u.SlotID, Pin: pin}
	ctx, err := crypto11.Configure(cfg)
	if err == nil {
		return ctx, nil
	}
	msg := err.Error()
	var p11 pkcs11.Error
	switch {
	case errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_INCORRECT || p11 == pkcs11.CKR_PIN_INVALID || p11 == pkcs11.CKR_PIN_LEN_RANGE):
		return nil, tokenFailure(u, "wrong PIN (%s)", pinOrigin(u))
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_LOCKED:
		return nil, tokenFailure(u, "the PIN is locked (too many wrong PINs): the token's security officer must unlock it")
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return nil, tokenFailure(u, "no such token in module %s (is it plugged in and initialised?)", u.ModulePath)
	case strings.Contains(msg, "failed to open module") || strings.Contains(msg, "failed to initialize module"):
		return nil, tokenFailure(u, "PKCS#11 module %s cannot be loaded: %s", u.ModulePath, strings.TrimPrefix(msg, "failed to create module context: "))
	}
	return nil, tokenFailure(u, "%s", oneLine(msg))
}

func pinOrigin(u *cluster.PKCS11URI) string {
	switch {
	case u.PINValue != "":
		return "pin-value"
	case u.PINSource != "":
		return "pin-source " + u.PINSource
	}
	return cluster.PINEnv
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// findKey returns the token's key pair for pub: the one under the URI's
// label, or, when that label holds another key or none, any key pair in
// the token whose public key is pub (a CA rotation relabels keys, and a
// run killed between two relabels must still find its CA's key). nil
// when the token holds no such key.
func findKey(ctx *crypto11.Context, u *cluster.PKCS11URI, pub crypto.PublicKey) (crypto11.Signer, error) {
	byLabel, err := ctx.FindKeyPairs(nil, []byte(u.Object))
	if err != nil {
		return nil, tokenFailure(u, "find key: %s", oneLine(err.Error()))
	}
	for _, k := range byLabel {
		if pub == nil || publicEqual(pub, k.Public()) {
			return k, nil
		}
	}
	if pub == nil {
		return nil, nil
	}
	all, err := ctx.FindAllKeyPairs()
	if err != nil {
		return nil, tokenFailure(u, "find key: %s", oneLine(err.Error()))
	}
	for _, k := range all {
		if publicEqual(pub, k.Public()) {
			return k, nil
		}
	}
	return nil, nil
}

// tokenSigner is the CA's crypto.Signer for a key in a token. Every
// signature is made by the token: the key never leaves it.
type tokenSigner struct {
	u   *cluster.PKCS11URI
	pin string
	pub crypto.PublicKey
}

func (t *tokenSigner) Public() crypto.PublicKey { return t.pub }

func (t *tokenSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	ctx, err := session(t.u, t.pin)
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	k, err := findKey(ctx, t.u, t.pub)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, tokenFailure(t.u, "the token no longer holds the CA's key")
	}
	sig, err := k.Sign(r, digest, opts)
	if err != nil {
		return nil, tokenFailure(t.u, "sign: %s", oneLine(err.Error()))
	}
	return sig, nil
}

// afterSession, in tests, runs once a session of openTokenKey's is
// open: a token pulled right then.
var afterSession func()

// openTokenKey finds the key matching a CA certificate's public key.
func openTokenKey(u *cluster.PKCS11URI, pin string, pub crypto.PublicKey) (crypto.Signer, error) {
	found, err := lookUpKey(u, pin, pub)
	if err != nil {
		return nil, err
	}
	if found == nil {
		// A token pulled during the search lists no objects and says
		// no error (SoftHSM does so): "no key" is taken as the truth
		// only from a fresh session, which fails with the token's own
		// error when the token is gone.
		if found, err = lookUpKey(u, pin, pub); err != nil {
			return nil, err
		}
	}
	if found == nil {
		return nil, tokenFailure(u, "the token holds no private key matching the CA certificate")
	}
	return &tokenSigner{u: u, pin: pin, pub: found}, nil
}

// lookUpKey is the public key of the token's key pair for pub, in a
// session of its own; nil when the token answers and holds none.
func lookUpKey(u *cluster.PKCS11URI, pin string, pub crypto.PublicKey) (crypto.PublicKey, error) {
	ctx, err := session(u, pin)
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	if afterSession != nil {
		afterSession()
	}
	k, err := findKey(ctx, u, pub)
	if err != nil || k == nil {
		return nil, err
	}
	return k.Public(), nil
}

// createTokenKey returns the key under the URI's label, generating it in
// the token when there is none: sensitive, not extractable, a token
// object, usable only to sign.
func createTokenKey(u *cluster.PKCS11URI, spec cluster.KeySpec) (crypto.Signer, error) {
	pin, err := readPIN(u)
	if err != nil {
		return nil, err
	}
	ctx, err := session(u, pin)
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	existing, err := ctx.FindKeyPairs(nil, []byte(u.Object))
	if err != nil {
		return nil, tokenFailure(u, "find key: %s", oneLine(err.Error()))
	}
	switch len(existing) {
	case 0:
	case 1:
		return &tokenSigner{u: u, pin: pin, pub: existing[0].Public()}, nil
	default:
		return nil, tokenFailure(u, "%d key pairs carry this label: which one is the CA's is ambiguous", len(existing))
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	pubAttrs, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(u.Object))
	if err != nil {
		return nil, err
	}
	privAttrs := pubAttrs.Copy()
	for _, a := range []struct {
		t crypto11.AttributeType
		v bool
	}{{crypto11.CkaPrivate, true}, {crypto11.CkaSensitive, true}, {crypto11.CkaExtractable, false}, {crypto11.CkaDecrypt, false}} {
		if err := privAttrs.Set(a.t, a.v); err != nil {
			return nil, err
		}
	}
	var k crypto11.Signer
	switch spec.Algorithm {
	case cluster.AlgECDSA:
		curve := elliptic.P256()
		if spec.Size == 384 {
			curve = elliptic.P384()
		}
		k, err = ctx.GenerateECDSAKeyPairWithAttributes(pubAttrs, privAttrs, curve)
	case cluster.AlgRSA:
		k, err = ctx.GenerateRSAKeyPairWithAttributes(pubAttrs, privAttrs, spec.Size)
	default:
		return nil, input.Errorf("key %s is not supported in a token", spec)
	}
	if err != nil {
		return nil, tokenFailure(u, "generate a %s key: %s", spec, oneLine(err.Error()))
	}
	return &tokenSigner{u: u, pin: pin, pub: k.Public()}, nil
}

// relabelTokenKey gives the key pair whose public key is pub the label
// to, private and public half alike; a key already labelled so is left
// as it is. crypto11 has no call to change an attribute, so this one step
// goes to the PKCS#11 module directly, in the same logged-in process.
func relabelTokenKey(u *cluster.PKCS11URI, pin string, pub crypto.PublicKey, to string) error {
	ctx, err := session(u, pin)
	if err != nil {
		return err
	}
	defer ctx.Close()
	k, err := findKey(ctx, u, pub)
	if err != nil {
		return err
	}
	if k == nil {
		return tokenFailure(u, "the token holds no key for this CA")
	}
	attrs, err := ctx.GetAttributes(k, []crypto11.AttributeType{crypto11.CkaId, crypto11.CkaLabel})
	if err != nil {
		return tokenFailure(u, "read the key's label: %s", oneLine(err.Error()))
	}
	from := string(attrs[crypto11.CkaLabel].Value)
	if from == to {
		return nil
	}
	id := attrs[crypto11.CkaId].Value
	// The module is initialised and the token logged in by ctx, which
	// stays open until the relabel is done: a second handle on the same
	// library shares that state and must not finalise it.
	raw := pkcs11.New(u.ModulePath)
	if raw == nil {
		return tokenFailure(u, "PKCS#11 module %s cannot be loaded", u.ModulePath)
	}
	defer raw.Destroy()
	slot, err := rawSlot(raw, u)
	if err != nil {
		return err
	}
	sh, err := raw.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return tokenFailure(u, "open a session: %s", oneLine(err.Error()))
	}
	defer raw.CloseSession(sh)
	if err := raw.FindObjectsInit(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, []byte(from)),
	}); err != nil {
		return tokenFailure(u, "find the key: %s", oneLine(err.Error()))
	}
	handles, _, err := raw.FindObjects(sh, 16)
	_ = raw.FindObjectsFinal(sh)
	if err != nil {
		return tokenFailure(u, "find the key: %s", oneLine(err.Error()))
	}
	for _, h := range handles {
		if err := raw.SetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, []byte(to))}); err != nil {
			return tokenFailure(u, "relabel %q as %q: %s", from, to, oneLine(err.Error()))
		}
	}
	return nil
}

// rawSlot finds the URI's token among the module's slots.
func rawSlot(raw *pkcs11.Ctx, u *cluster.PKCS11URI) (uint, error) {
	slots, err := raw.GetSlotList(true)
	if err != nil {
		return 0, tokenFailure(u, "list slots: %s", oneLine(err.Error()))
	}
	for _, s := range slots {
		if u.SlotID != nil && uint(*u.SlotID) == s {
			return s, nil
		}
		info, err := raw.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if (u.Token != "" && info.Label == u.Token) || (u.Serial != "" && info.SerialNumber == u.Serial) {
			return s, nil
		}
	}
	return 0, tokenFailure(u, "no such token in module %s", u.ModulePath)
}

// describeTokenKey reads the label and protection of the key for pub.
func describeTokenKey(u *cluster.PKCS11URI, pin string, pub crypto.PublicKey) (TokenKey, error) {
	ctx, err := session(u, pin)
	if err != nil {
		return TokenKey{}, err
	}
	defer ctx.Close()
	k, err := findKey(ctx, u, pub)
	if err != nil {
		return TokenKey{}, err
	}
	if k == nil {
		return TokenKey{}, tokenFailure(u, "the token holds no key for this CA")
	}
	attrs, err := ctx.GetAttributes(k, []crypto11.AttributeType{crypto11.CkaLabel, crypto11.CkaExtractable, crypto11.CkaSensitive})
	if err != nil {
		return TokenKey{}, tokenFailure(u, "read the key's attributes: %s", oneLine(err.Error()))
	}
	flag := func(t crypto11.AttributeType) bool {
		a := attrs[t]
		return a != nil && len(a.Value) == 1 && a.Value[0] != 0
	}
	return TokenKey{Label: string(attrs[crypto11.CkaLabel].Value), Extractable: flag(crypto11.CkaExtractable), Sensitive: flag(crypto11.CkaSensitive)}, nil
}

// labelPublicKey is the public key under u's label, nil when none.
func labelPublicKey(u *cluster.PKCS11URI, pin string) (crypto.PublicKey, error) {
	ctx, err := session(u, pin)
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	k, err := findKey(ctx, u, nil)
	if err != nil || k == nil {
		return nil, err
	}
	return k.Public(), nil
}
