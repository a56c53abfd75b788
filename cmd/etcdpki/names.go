package main

import (
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
)

// checkName applies the spec's name rule (cluster.CheckName) to a name
// given on the command line, before anything else reads or writes: a
// name becomes a directory in the PKI tree (nodes/NAME, issued/NAME), so
// "../x" or "/abs" would lead out of it. what names the argument.
func checkName(what, name string) error {
	if err := cluster.CheckName(name); err != nil {
		return input.Errorf("%s %v", what, err)
	}
	return nil
}

// checkTargets applies the name rule to certificate names (certs renew,
// certs revoke): NAME, KIND, NAME/KIND or client/NAME, every part a
// name. A name that passes can still be unknown; that is the caller's
// next check.
func checkTargets(what string, args []string) error {
	for _, a := range args {
		parts := strings.Split(a, "/")
		ok := len(parts) <= 2
		for _, p := range parts {
			ok = ok && cluster.CheckName(p) == nil
		}
		if !ok {
			return input.Errorf("%s %q is not a certificate name: NAME, KIND, NAME/KIND or client/NAME, each NAME of letters, digits, '-', '.', '_' (see etcdpki certs list)", what, a)
		}
	}
	return nil
}

// checkNodeFlags applies the name rule to the NAME of each --node
// NAME=IP[,IP|DNS...] before the spec is built from them.
func checkNodeFlags(values []string) error {
	for _, v := range values {
		name, _, _ := strings.Cut(v, "=")
		if err := checkName("--node "+v+": NAME", name); err != nil {
			return err
		}
	}
	return nil
}
