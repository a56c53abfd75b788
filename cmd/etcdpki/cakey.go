package main

import (
	"fmt"
	"io"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// caKeyAgrees refuses a command that signs while the spec's ca.key and
// PKI/etcd/ca.key.uri disagree (see pki.CAKeyDisagreement for which one
// is the authority, and why). ca rotate does not call it: it is the
// command that makes a new CA with its key where the spec says; init
// does not either: it records the spec's URI for the same key, and
// refuses another key itself.
func caKeyAgrees(inv *pki.Inventory) error {
	d, err := pki.CAKeyDisagreement(inv)
	if err != nil || d == "" {
		return err
	}
	return input.Errorf("%s", d)
}

// warnCAKey prints the disagreement as a warning, for the commands that
// only read (certs list).
func warnCAKey(inv *pki.Inventory, w io.Writer) error {
	d, err := pki.CAKeyDisagreement(inv)
	if err != nil || d == "" {
		return err
	}
	_, err = fmt.Fprintf(w, "etcdpki: warning: %s\n", d)
	return err
}
