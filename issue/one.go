package issue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
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
func One(ctx context.Context, inv *pki.Inventory, r OneRequest, o Options) (pki.Target, error) {
	s := inv.Spec
	k, err := checkOneRequest(inv, &r)
	if err != nil {
		return pki.Target{}, err
	}
	t, err := oneTarget(inv, r, k)
	if err != nil {
		return pki.Target{}, err
	}
	authority, exists, err := checkOneBundle(ctx, inv, t)
	if err != nil {
		return t, err
	}
	held, err := o.lock(s.PKIDir)
	if err != nil {
		return t, err
	}
	defer held.Release()
	return t, writeOne(inv, r, t, authority, exists, o)
}

// checkOneRequest decides the kind of certificate r asks for and checks
// its name, SANs (normalised into r.Hosts) and organizations, and that
// the SANs fit the kind.
func checkOneRequest(inv *pki.Inventory, r *OneRequest) (ca.Kind, error) {
	var k ca.Kind
	switch r.Kind {
	case "server":
		k = ca.KindServer
	case "peer":
		k = ca.KindPeer
	case "client":
		k = ca.KindClient
	case KindRoot:
		return ca.KindClient, checkRootRequest(r)
	default:
		return k, input.Errorf("kind %q: must be server, peer, client or root", r.Kind)
	}
	if r.Name == cluster.RootUser {
		return k, input.Errorf("name %q is etcd's superuser: etcdpki issue root writes its pair into the PKI directory only, never into a bundle", r.Name)
	}
	if err := checkIssueName(inv, r.Name); err != nil {
		return k, err
	}
	var hosts []string
	for _, h := range r.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			if err := cluster.CheckIP(ip); err != nil {
				return k, input.Errorf("--ip %v", err)
			}
			hosts = append(hosts, ip.String())
			continue
		}
		if err := cluster.CheckDNSName(h); err != nil {
			return k, input.Errorf("--dns %v", err)
		}
		hosts = append(hosts, strings.ToLower(h))
	}
	r.Hosts = hosts
	for _, o := range r.Organization {
		if err := cluster.CheckSubjectValue(o); err != nil {
			return k, input.Errorf("--org %v", err)
		}
	}
	if k.ServerSANs && len(r.Hosts) == 0 {
		return k, input.Errorf("a %s certificate needs at least one --ip or --dns", r.Kind)
	}
	if !k.ServerSANs && len(r.Hosts) > 0 {
		return k, input.Errorf("a client certificate carries no SANs; drop --ip/--dns")
	}
	return k, nil
}

// oneTarget decides where the certificate goes (--out, checked, or
// PKI/issued/NAME, kept inside the PKI) and describes it as a target.
func oneTarget(inv *pki.Inventory, r OneRequest, k ca.Kind) (pki.Target, error) {
	out, err := bundleOut(inv, r)
	if err != nil {
		return pki.Target{}, err
	}
	base := k.BaseName
	if base == "" {
		base = r.Name
	}
	return pki.Target{ID: r.Kind + "/" + r.Name, Kind: k, Owner: r.Name, CommonName: r.Name, Organization: r.Organization,
		Hosts: r.Hosts, Dir: out, CertName: base + pki.CertExt, KeyName: base + pki.KeyExt, CADir: out}, nil
}

// checkOneBundle, before the lock, loads the CA and decides whether t's
// bundle can be written: no CA rotation under way, the bundle t's own (and
// whether it exists), from this CA, and its directory writable.
func checkOneBundle(ctx context.Context, inv *pki.Inventory, t pki.Target) (*ca.CA, bool, error) {
	authority, err := pki.LoadCA(inv.Paths)
	if err != nil {
		return nil, false, err
	}
	// A certificate from the old CA would stop working at the rotation's
	// finish; issue it once the new CA is in effect.
	if err := refuseDuringCARotation(inv.Paths, "issue"); err != nil {
		return nil, false, err
	}
	exists, err := checkOwnBundle(t)
	if err != nil {
		return nil, false, err
	}
	if _, err := pki.CheckBundleCA(t.Dir, authority); err != nil {
		return nil, false, err
	}
	pl := &plan{byDir: map[string]*pending{}}
	pl.add(t.Store(), atomicdir.File{Name: pki.CAFile, Data: authority.CertPEM, Mode: atomicdir.CertMode})
	if err := checkWritable(inv.Spec.PKIDir, pl); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	return authority, exists, nil
}

// writeOne, under the lock, keeps the bundle's pair if it is still good
// (else backs it up) or signs a new one, and switches the bundle to it.
func writeOne(inv *pki.Inventory, r OneRequest, t pki.Target, authority *ca.CA, exists bool, o Options) error {
	s, out := inv.Spec, t.Dir
	undo, note, keep := func() {}, "", false
	var certPEM, keyPEM []byte
	var err error
	if exists {
		// Under the lock: what another run left there is what counts.
		if _, err := checkOwnBundle(t); err != nil {
			return err
		}
		var rerr error
		certPEM, keyPEM, rerr = pki.ReadTargetPair(t)
		info, _ := pki.InspectPair(t, authority, certPEM, keyPEM, rerr, s.Leaf.RenewBefore, o.now())
		if keep, undo, note, err = keepOrBackUp(inv.Paths, t, info, o); err != nil {
			return err
		}
	}
	if !keep {
		// The kept pair is written again as it is: the update repairs
		// links a crash left and re-tightens modes, and changes no byte.
		if certPEM, keyPEM, err = signTarget(authority, s, t, nil, o.now()); err != nil {
			undo()
			return err
		}
	}
	files := []atomicdir.File{
		{Name: pki.CAFile, Data: authority.CertPEM, Mode: atomicdir.CertMode},
		{Name: t.CertName, Data: certPEM, Mode: atomicdir.CertMode},
		{Name: t.KeyName, Data: keyPEM, Mode: atomicdir.KeyMode},
	}
	if _, err := atomicdir.Update(t.Store(), files, checkPairs); err != nil {
		undo()
		return fmt.Errorf("write %s: %w", out, err)
	}
	if keep {
		o.printf("[issue] %s certificate %q%s in %s: %s", r.Kind, r.Name, describeHosts(r.Hosts), out, note)
		return o.tighten(inv)
	}
	if note != "" {
		note = " (" + note + ")"
	}
	o.printf("[issue] %s certificate %q%s -> %s%s", r.Kind, r.Name, describeHosts(r.Hosts), out, note)
	return o.tighten(inv)
}

// checkIssueName refuses a name that is not valid as a spec name, is
// reserved (it would write ca.crt/ca.key over the bundle's CA file, or
// name a kind of certificate), or already names a node or client of the
// cluster: a second certificate with a member's name is a second identity
// for it.
func checkIssueName(inv *pki.Inventory, name string) error {
	s := inv.Spec
	if err := cluster.CheckName(name); err != nil {
		return input.Errorf("name %v", err)
	}
	if err := cluster.CheckNotReserved(name); err != nil {
		return input.Errorf("name %v", err)
	}
	if _, ok := s.Node(name); ok {
		return input.Errorf("name %q is a node of the cluster; its certificates are renewed with etcdpki certs renew %s", name, name)
	}
	if _, ok := s.Client(name); ok || name == cluster.ClientAPIServer || name == cluster.ClientHealthcheck {
		return input.Errorf("name %q is a client of the cluster; its certificate is renewed with etcdpki certs renew %s", name, name)
	}
	// With --dir alone there is no spec: the PKI tree still knows them.
	p := inv.Paths
	for _, d := range []string{filepath.Dir(p.NodeDir(name)), filepath.Dir(p.ClientDir(name))} {
		if info, err := os.Stat(filepath.Join(d, name)); err == nil && info.IsDir() {
			return input.Errorf("name %q already has a bundle in %s", name, filepath.Join(d, name))
		}
	}
	return nil
}

// bundleOut is where One writes r's bundle, absolute: --out, checked,
// or PKI/issued/NAME, which must stay inside the PKI directory.
func bundleOut(inv *pki.Inventory, r OneRequest) (string, error) {
	out := r.Out
	if r.Kind == KindRoot {
		return filepath.Abs(inv.Paths.RootDir())
	}
	if out == "" {
		out = filepath.Join(inv.Spec.PKIDir, "issued", r.Name)
		if err := inv.Paths.CheckOwnerDir(r.Name, out); err != nil {
			return "", err
		}
	} else if err := checkOut(inv.Spec.PKIDir, out); err != nil {
		return "", err
	}
	return filepath.Abs(out)
}

// checkOut refuses an --out inside the PKI directory other than under
// PKI/issued/: everything else there (the CA, node, apiserver and client
// bundles, backups) is managed, and a pair written into it would replace
// a CA or a member's key. Symbolic links are resolved on both sides.
func checkOut(pki, out string) error {
	rp, err1 := pathx.Resolve(pki)
	ro, err2 := pathx.Resolve(out)
	if err1 != nil || err2 != nil {
		return input.Errorf("--out %s: %v", out, errors.Join(err1, err2))
	}
	rel, err := filepath.Rel(rp, ro)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil // outside the PKI directory
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) >= 2 && parts[0] == "issued" {
		return nil
	}
	return input.Errorf("--out %s is inside the PKI directory's managed tree (%s); use PKI/issued/NAME (the default) or a directory outside %s", out, rel, pki)
}

// checkNotAnotherCert refuses to replace a certificate in the bundle that
// belongs to someone else: re-issuing NAME into its own bundle is fine,
// writing server.crt over another server's is not.
func checkNotAnotherCert(t pki.Target) error {
	data, err := regular.ReadFile(t.CertPath(), regular.MaxPEM)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return pki.ReadError(t.CertPath(), err)
	}
	c, err := ca.ParseCert(data)
	if err != nil {
		return input.Errorf("%s: %v; refusing to replace what is not a certificate", t.CertPath(), err)
	}
	if c.Subject.CommonName != t.CommonName {
		return input.Errorf("%s: holds the certificate of %q, not %q; refusing to replace it", t.CertPath(), c.Subject.CommonName, t.CommonName)
	}
	return nil
}
