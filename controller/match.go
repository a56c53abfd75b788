package controller

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// CSR is what the signer reads from one CertificateSigningRequest: who
// made it (spec.username, set by the apiserver from the requester's
// credentials, so it cannot be forged by the request's body), the signer
// it names, its usages (Kubernetes' names), the PEM request and the
// optional etcdpki.io/target annotation.
type CSR struct {
	Username   string
	SignerName string
	Usages     []string
	Request    []byte
	// Target is the annotation: the target the agent says it asks for, ""
	// when absent. It must agree with what Username and SignerName give;
	// it is never trusted alone.
	Target string
}

// Decision is the signer's verdict on one CSR: the target it is for and
// the request to sign it with, or the reason it is denied.
type Decision struct {
	Target  pki.Target
	Request ca.Request
	// Reason is why the CSR is denied; "" when it may be signed.
	Reason string
}

// Denied reports whether the CSR must be denied.
func (d Decision) Denied() bool { return d.Reason != "" }

func deny(format string, args ...any) Decision { return Decision{Reason: fmt.Sprintf(format, args...)} }

// Match decides a CSR against one cluster's expanded spec. It approves
// only when the requester is the agent of the node or client the
// certificate belongs to and the request asks for exactly what the spec
// says (subject, SANs, usages, key); anything else is denied with a
// reason that names the difference. The spec is the only authority: the
// request's own fields and annotation only ever narrow it.
func Match(inv *pki.Inventory, c CSR) Decision {
	owner, node, ok := ParseIdentity(c.Username)
	if !ok {
		return deny("user %s is not an etcdpki agent identity", c.Username)
	}
	what := map[bool]string{true: "node", false: "client"}[node]
	var mine []pki.Target
	for _, t := range inv.Targets {
		if t.Owner == owner && t.OwnerNode == node {
			mine = append(mine, t)
		}
	}
	if len(mine) == 0 && !hasOwner(inv, owner, node) {
		return deny("%s %s is not in the spec of cluster %s", what, owner, inv.Spec.Name)
	}
	var fits []pki.Target
	for _, m := range mine {
		if v1alpha1.SignerFor(m.Kind.Name) == c.SignerName {
			fits = append(fits, m)
		}
	}
	if len(fits) == 0 {
		return deny("%s %s has no certificate from signer %s", what, owner, c.SignerName)
	}
	t := fits[0]
	if c.Target != "" {
		i := slices.IndexFunc(fits, func(f pki.Target) bool { return f.ID == c.Target })
		if i < 0 {
			return deny("annotation etcdpki.io/target says %s, but %s with signer %s asks for %s", c.Target, c.Username, c.SignerName, t.ID)
		}
		t = fits[i]
	} else if len(fits) > 1 {
		// No kind of today's catalogue shares an owner and a signer; a
		// new one that does needs the annotation to say which.
		return deny("%s %s has %d certificates from signer %s: the annotation etcdpki.io/target must name one", what, owner, len(fits), c.SignerName)
	}
	if reason := checkUsages(t, c.Usages); reason != "" {
		return deny("%s", reason)
	}
	r := t.Request(inv.Spec.Leaf)
	if err := ca.CheckCSR(r, c.Request); err != nil {
		return Decision{Reason: mismatchReason(inv, t, err)}
	}
	return Decision{Target: t, Request: r}
}

// hasOwner reports whether the spec names the node or client, whatever
// certificates it has (the healthcheck client has none of its own).
func hasOwner(inv *pki.Inventory, owner string, node bool) bool {
	if node {
		return slices.ContainsFunc(inv.Spec.Nodes, func(n cluster.Node) bool { return n.Name == owner })
	}
	return slices.ContainsFunc(inv.Spec.Clients, func(c cluster.Client) bool { return c.Name == owner })
}

// checkUsages wants the CSR's usages to be exactly the target's, as a
// set, and names the first that differs.
func checkUsages(t pki.Target, got []string) string {
	want := Usages(t)
	for _, u := range got {
		if !slices.Contains(want, u) {
			return fmt.Sprintf("usage %q is not in the spec for %s (it gives %s)", u, t.ID, strings.Join(want, ", "))
		}
	}
	for _, u := range want {
		if !slices.Contains(got, u) {
			return fmt.Sprintf("usage %q is missing: the spec gives %s %s", u, t.ID, strings.Join(want, ", "))
		}
	}
	return ""
}

// mismatchReason words a CheckCSR error for the requester. A SAN that is
// another member's address says whose it is: that is the request an
// attacker holding one node's credentials would make.
func mismatchReason(inv *pki.Inventory, t pki.Target, err error) string {
	var m *ca.CSRMismatch
	if !errors.As(err, &m) || m.Field != "SAN" || m.Got == "" {
		return err.Error()
	}
	if other := sanOwner(inv, t, m.Got); other != "" {
		return fmt.Sprintf("SAN %s belongs to %s, not %s", m.Got, other, t.Owner)
	}
	return err.Error()
}

// sanOwner is the first other node whose server SANs include san, "" when
// none does or when the requesting node has it too (a name every member
// carries, such as localhost, is nobody's in particular).
func sanOwner(inv *pki.Inventory, t pki.Target, san string) string {
	norm := func(v string) string {
		if ip := net.ParseIP(v); ip != nil {
			return ip.String()
		}
		return strings.ToLower(v)
	}
	owns := func(n cluster.Node) bool {
		return slices.ContainsFunc(n.ServerSANs(), func(h string) bool { return norm(h) == norm(san) })
	}
	for _, n := range inv.Spec.Nodes {
		if n.Name == t.Owner && t.OwnerNode && owns(n) {
			return ""
		}
	}
	for _, n := range inv.Spec.Nodes {
		if (n.Name != t.Owner || !t.OwnerNode) && owns(n) {
			return n.Name
		}
	}
	return ""
}

// Usages are the key usages a CSR for t must ask for, by their
// certificates.k8s.io/v1 names: its signer's (v1alpha1.Usages).
func Usages(t pki.Target) []string {
	var out []string
	for _, u := range v1alpha1.Usages(v1alpha1.SignerFor(t.Kind.Name)) {
		out = append(out, string(u))
	}
	return out
}

// ParseIdentity reads an agent identity (a CSR's spec.username):
// etcdpki:node:NODE (node true) or etcdpki:client:NAME. ok is false for
// anything else.
func ParseIdentity(user string) (owner string, node, ok bool) {
	if n, found := strings.CutPrefix(user, v1alpha1.NodeUserPrefix); found && n != "" {
		return n, true, true
	}
	if n, found := strings.CutPrefix(user, v1alpha1.ClientUserPrefix); found && n != "" {
		return n, false, true
	}
	return "", false, false
}
