package issue

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// OneRequest asks for a single certificate outside the spec's catalogue
// expansion: `etcdpki issue server|peer|client NAME`.
type OneRequest struct {
	// Kind is "server", "peer" or "client".
	Kind  string
	Name  string
	Hosts []string
	// Organization sets O= for client certificates (RBAC groups).
	Organization []string
	// Out is the bundle directory; "" means PKI/issued/NAME.
	Out string
}

// One issues one certificate from the PKI's existing CA into its own
// bundle (ca.crt plus the pair), switched atomically.
func One(ctx context.Context, s *cluster.Spec, r OneRequest, o Options) (Target, error) {
	var k ca.Kind
	switch r.Kind {
	case "server":
		k = ca.KindServer
	case "peer":
		k = ca.KindPeer
	case "client":
		k = ca.KindClient
	default:
		return Target{}, inputError("kind %q: must be server, peer or client", r.Kind)
	}
	if !validName(r.Name) {
		return Target{}, inputError("name %q: use letters, digits, '-', '.', '_'", r.Name)
	}
	if k.ServerSANs && len(r.Hosts) == 0 {
		return Target{}, inputError("a %s certificate needs at least one --ip or --dns", r.Kind)
	}
	if !k.ServerSANs && len(r.Hosts) > 0 {
		return Target{}, inputError("a client certificate carries no SANs; drop --ip/--dns")
	}
	out := r.Out
	if out == "" {
		out = filepath.Join(s.PKIDir, "issued", r.Name)
	}
	out, _ = filepath.Abs(out)
	base := k.BaseName
	if base == "" {
		base = r.Name
	}
	t := Target{ID: r.Kind + "/" + r.Name, Kind: k, Owner: r.Name, CommonName: r.Name, Organization: r.Organization,
		Hosts: r.Hosts, Dir: out, CertName: base + ".crt", KeyName: base + ".key", CADir: out}
	authority, err := LoadCA(s.PKIDir)
	if err != nil {
		return t, err
	}
	pl := &plan{byDir: map[string]*pending{}}
	pl.add(out, atomicdir.File{Name: "ca.crt", Data: authority.CertPEM, Mode: atomicdir.CertMode})
	if err := checkWritable(s.PKIDir, pl); err != nil {
		return t, err
	}
	if err := ctx.Err(); err != nil {
		return t, err
	}
	held, err := o.lock(s.PKIDir)
	if err != nil {
		return t, err
	}
	defer held.Release()
	certPEM, keyPEM, err := signTarget(authority, s, t, nil, o.now())
	if err != nil {
		return t, err
	}
	files := []atomicdir.File{
		{Name: "ca.crt", Data: authority.CertPEM, Mode: atomicdir.CertMode},
		{Name: t.CertName, Data: certPEM, Mode: atomicdir.CertMode},
		{Name: t.KeyName, Data: keyPEM, Mode: atomicdir.KeyMode},
	}
	if _, err := atomicdir.Update(out, files, checkPairs); err != nil {
		return t, fmt.Errorf("write %s: %w", out, err)
	}
	o.printf("[issue] %s certificate %q%s -> %s", r.Kind, r.Name, describeHosts(r.Hosts), out)
	return t, nil
}

func validName(n string) bool {
	if n == "" || len(n) > 64 || n[0] == '.' || n[0] == '-' {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
