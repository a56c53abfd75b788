package cluster

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// PINEnv names the environment variable a token's PIN is read from when
// its URI has no pin-source: a PIN on the command line would be in every
// process listing, and one in the spec would be in every backup of it.
const PINEnv = "ETCDPKI_PKCS11_PIN"

// AllowPINValueEnv, set to "1", lets a URI carry pin-value: only for
// throwaway test tokens, whose PIN protects nothing.
const AllowPINValueEnv = "ETCDPKI_PKCS11_ALLOW_PIN_VALUE"

// PKCS11URI names a CA key held in a PKCS#11 token (RFC 7512): the module
// to load, the token (by label, serial or slot), the key's label, and
// where the PIN comes from.
type PKCS11URI struct {
	// Token is the token's label (token=); Serial its serial number
	// (serial=); SlotID its slot (slot-id=). Exactly one is set.
	Token  string
	Serial string
	SlotID *int
	// Object is the label of the CA's private key (object=).
	Object string
	// ModulePath is the PKCS#11 library (module-path=), an absolute path.
	ModulePath string
	// PINSource is the file holding the PIN (pin-source=file:PATH); ""
	// means the PINEnv environment variable.
	PINSource string
	// PINValue is the PIN itself (pin-value=), allowed only with the
	// AllowPINValueEnv opt-in.
	PINValue string
}

// IsPKCS11URI reports whether a ca.key value means a token rather than a
// file.
func IsPKCS11URI(s string) bool { return strings.HasPrefix(strings.ToLower(s), "pkcs11:") }

// ParsePKCS11URI parses a pkcs11: URI naming a CA key. allowPINValue is
// the explicit opt-in for pin-value. Errors name the attribute at fault.
func ParsePKCS11URI(s string, allowPINValue bool) (*PKCS11URI, error) {
	if !IsPKCS11URI(s) {
		return nil, fmt.Errorf("%q is not a pkcs11: URI", s)
	}
	rest := s[len("pkcs11:"):]
	path, query, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{}
	seen := map[string]bool{}
	for _, part := range splitNonEmpty(path, ";") {
		k, v, err := attribute(part, seen)
		if err != nil {
			return nil, err
		}
		switch k {
		case "token":
			u.Token = v
		case "serial":
			u.Serial = v
		case "slot-id":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("slot-id: %q is not a slot number", v)
			}
			u.SlotID = &n
		case "object":
			u.Object = v
		case "type":
			if v != "private" {
				return nil, fmt.Errorf("type: %q: the CA key is a private key (type=private)", v)
			}
		default:
			return nil, fmt.Errorf("unknown attribute %q (use token, serial or slot-id, and object)", k)
		}
	}
	for _, part := range splitNonEmpty(query, "&") {
		k, v, err := attribute(part, seen)
		if err != nil {
			return nil, err
		}
		switch k {
		case "module-path":
			u.ModulePath = v
		case "pin-source":
			u.PINSource = strings.TrimPrefix(strings.TrimPrefix(v, "file://"), "file:")
			if !filepath.IsAbs(u.PINSource) {
				return nil, fmt.Errorf("pin-source: %q is not file:/ABSOLUTE/PATH", v)
			}
		case "pin-value":
			if !allowPINValue {
				return nil, fmt.Errorf("pin-value: a PIN in clear is refused; give pin-source=file:/PATH or set %s (pin-value is for test tokens only, with %s=1)", PINEnv, AllowPINValueEnv)
			}
			u.PINValue = v
		default:
			return nil, fmt.Errorf("unknown query attribute %q (use module-path and pin-source)", k)
		}
	}
	selectors := 0
	for _, set := range []bool{u.Token != "", u.Serial != "", u.SlotID != nil} {
		if set {
			selectors++
		}
	}
	switch {
	case selectors == 0:
		return nil, fmt.Errorf("no token: give token=LABEL (or serial= or slot-id=)")
	case selectors > 1:
		return nil, fmt.Errorf("token, serial and slot-id: give exactly one")
	case u.Object == "":
		return nil, fmt.Errorf("object: missing: give object=LABEL, the CA key's label")
	case u.ModulePath == "":
		return nil, fmt.Errorf("module-path: missing: give module-path=/PATH/TO/MODULE.so")
	case !filepath.IsAbs(u.ModulePath):
		return nil, fmt.Errorf("module-path: %q is not an absolute path", u.ModulePath)
	case u.PINSource != "" && u.PINValue != "":
		return nil, fmt.Errorf("pin-source and pin-value: give one")
	}
	return u, nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// attribute splits NAME=VALUE, percent-decoding the value; an attribute
// given twice is an error, not a silent last-one-wins.
func attribute(part string, seen map[string]bool) (string, string, error) {
	k, raw, ok := strings.Cut(part, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("%q is not NAME=VALUE", part)
	}
	k = strings.ToLower(k)
	if seen[k] {
		return "", "", fmt.Errorf("%s: given twice", k)
	}
	seen[k] = true
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", "", fmt.Errorf("%s: bad percent-encoding in %q", k, raw)
	}
	if v == "" {
		return "", "", fmt.Errorf("%s: empty", k)
	}
	return k, v, nil
}

// String renders the URI without any pin-value, so that it can be
// written into the PKI directory and shown.
func (u PKCS11URI) String() string {
	var path []string
	switch {
	case u.Token != "":
		path = append(path, "token="+escape(u.Token))
	case u.Serial != "":
		path = append(path, "serial="+escape(u.Serial))
	case u.SlotID != nil:
		path = append(path, "slot-id="+strconv.Itoa(*u.SlotID))
	}
	path = append(path, "object="+escape(u.Object), "type=private")
	q := "module-path=" + escape(u.ModulePath)
	if u.PINSource != "" {
		q += "&pin-source=file:" + escape(u.PINSource)
	}
	return "pkcs11:" + strings.Join(path, ";") + "?" + q
}

// escape percent-encodes what would end an attribute early.
func escape(v string) string {
	r := strings.NewReplacer("%", "%25", ";", "%3B", "?", "%3F", "&", "%26", "=", "%3D", " ", "%20")
	return r.Replace(v)
}

// Where is how certs list and verify name the key's home.
func (u PKCS11URI) Where() string {
	var tok string
	switch {
	case u.Token != "":
		tok = "token " + u.Token
	case u.Serial != "":
		tok = "token serial " + u.Serial
	case u.SlotID != nil:
		tok = "slot " + strconv.Itoa(*u.SlotID)
	}
	return fmt.Sprintf("pkcs11: %s, object %s", tok, u.Object)
}

// WithObject is the same token and module with another key label: the
// next CA's key in a CA rotation, or a retired one.
func (u PKCS11URI) WithObject(label string) *PKCS11URI {
	u.Object = label
	return &u
}

// SameKey reports whether two URIs name the same key in the same token
// through the same module; the PIN's source may differ.
func (u PKCS11URI) SameKey(o *PKCS11URI) bool {
	if o == nil {
		return false
	}
	slot := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	return u.Token == o.Token && u.Serial == o.Serial && slot(u.SlotID) == slot(o.SlotID) &&
		u.Object == o.Object && filepath.Clean(u.ModulePath) == filepath.Clean(o.ModulePath)
}
