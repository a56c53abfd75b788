package verify

import (
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/pki"
)

// CheckCAKey says where the CA key is, with the spec's PKI directory at
// hand: a file, or a token object that must be there, open with the PIN
// given, and not extractable.
const CheckCAKey = "ca-key"

// caKeyCheck opens the CA's key as every signing command would: a token
// that is absent, a wrong PIN or a module that does not load fail it.
func caKeyCheck(p pki.Paths) Check {
	c := Check{Name: CheckCAKey, Target: p.CACert(), Status: OK}
	authority, err := pki.LoadCA(p)
	if err != nil {
		c.Status, c.Reason = Fail, err.Error()
		return c
	}
	c.Reason = authority.KeyWhere(p.CAKey())
	if !authority.InToken() {
		return c
	}
	d, err := ca.DescribeTokenKey(authority)
	switch {
	case err != nil:
		c.Status, c.Reason = Fail, err.Error()
	case d.Extractable || !d.Sensitive:
		c.Status = Warn
		c.Reason += ": the private key can leave the token (CKA_EXTRACTABLE or not CKA_SENSITIVE)"
	default:
		c.Reason += " (sensitive, not extractable)"
	}
	return c
}
