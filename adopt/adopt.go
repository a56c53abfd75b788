package adopt

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// Options is what `etcdpki adopt` was given.
type Options struct {
	// CACert and CAKey are the cluster's CA pair; never modified.
	CACert, CAKey string
	// NodeDirs and ClientDirs map a node or client name to a directory
	// holding copies of its pairs (never modified).
	NodeDirs, ClientDirs map[string]string
	// DryRun prints the report and writes nothing.
	DryRun bool
	// AcceptMismatch writes even when the cluster differs from the spec:
	// the certificates are taken as they are, and the first renewal
	// issues them as the spec says.
	AcceptMismatch bool
	// Timeout bounds each port's handshake; 0 means probe.DefaultTimeout.
	Timeout time.Duration
	// Out receives the report, one line per port, pair and certificate.
	Out io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Report is what adopt found.
type Report struct {
	CA *x509.Certificate
	// Ports are every member's client and peer port as seen on the wire.
	Ports []Port
	// Strangers are members the cluster lists that the spec does not.
	Strangers []string
	// Imported are the pairs taken from the operator's directories, by
	// target ID, with the file they came from.
	Imported map[string]string
	// Held are the certificates in use without a pair, by target ID.
	Held map[string]*x509.Certificate
	// Missing are the certificates neither seen nor imported: rotate
	// issues them.
	Missing []string
	// Mismatches say, one line each, how the cluster differs from the
	// spec.
	Mismatches []string
	// Written is true when the PKI directory was written.
	Written bool
}

// MismatchError is adopt refusing to write because the cluster differs
// from the spec (exit 1: the input was fine, the check failed).
type MismatchError struct{ Mismatches []string }

// Error says how many mismatches there are and what to do; the report
// above it names each.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("adopt: %d mismatches between the cluster and the spec (above); nothing written: fix the spec, or take the certificates as they are with --accept-mismatch (their first renewal follows the spec)", len(e.Mismatches))
}

// Run checks the CA, observes the cluster, compares it with the spec,
// and, unless there is a mismatch or DryRun, writes the adoption.
func Run(ctx context.Context, inv *pki.Inventory, o Options) (*Report, error) {
	if inv == nil || inv.Spec == nil {
		return nil, input.Errorf("adopt: no cluster spec")
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	if o.Timeout <= 0 {
		o.Timeout = probe.DefaultTimeout
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	s := inv.Spec
	authority, err := readCA(o.CACert, o.CAKey, now)
	if err != nil {
		return nil, err
	}
	if err := checkDirs(s, o.NodeDirs, o.ClientDirs); err != nil {
		return nil, err
	}
	if err := issue.CheckAdoptable(inv, authority); err != nil {
		return nil, err
	}
	sources, err := readSources(inv, o.NodeDirs, o.ClientDirs, authority)
	if err != nil {
		return nil, err
	}
	pair, err := authority.ProbeClient(ca.ProbeValidity, now)
	if err != nil {
		return nil, err
	}
	rep := &Report{CA: authority.Cert, Imported: map[string]string{}, Held: map[string]*x509.Certificate{}}
	rep.Ports = observe(ctx, s, authority, pair, o.Timeout, now)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rep.Strangers, err = strangers(ctx, s, authority, pair, o.Timeout); err != nil {
		rep.Mismatches = append(rep.Mismatches, "member list: "+err.Error())
	}
	a := compare(inv, rep, sources, authority)
	a.CA = authority
	printReport(out, rep)
	if len(rep.Mismatches) > 0 && !o.AcceptMismatch {
		return rep, &MismatchError{Mismatches: rep.Mismatches}
	}
	if o.DryRun {
		fmt.Fprintln(out, "dry run: nothing written")
		return rep, nil
	}
	res, err := issue.Adopt(ctx, inv, a, issue.Options{Out: out, Now: o.Now})
	if err != nil {
		return rep, err
	}
	rep.Written = true
	fmt.Fprintf(out, "adopted into %s: %d pairs imported, %d certificates held on their hosts, %d to issue at the next rotate; %d files written\n",
		s.PKIDir, len(res.Reused), len(rep.Held), len(rep.Missing), len(res.Written))
	return rep, syncAuth(ctx, inv, out)
}

// readCA reads and checks the cluster's CA pair: a CA, its key, in date.
func readCA(certPath, keyPath string, now time.Time) (*ca.CA, error) {
	if certPath == "" || keyPath == "" {
		return nil, input.Errorf("adopt needs the cluster's CA: give --ca-cert FILE and --ca-key FILE")
	}
	certPEM, err := regular.ReadFile(certPath, regular.MaxPEM)
	if err != nil {
		return nil, input.Errorf("--ca-cert %s: %v", certPath, pathx.UnwrapPath(err))
	}
	keyPEM, err := regular.ReadFile(keyPath, regular.MaxPEM)
	if err != nil {
		return nil, input.Errorf("--ca-key %s: %v", keyPath, pathx.UnwrapPath(err))
	}
	if err := checkPEM(certPath, certPEM, keyPath, keyPEM, true); err != nil {
		return nil, err
	}
	a, err := ca.ParseFiles(certPEM, keyPEM, certPath, keyPath)
	if err != nil {
		return nil, err
	}
	if now.After(a.Cert.NotAfter) {
		return nil, input.Errorf("%s: CA expired on %s; adopt a cluster whose CA still works (etcdpki certs reissue recovers an expired one)", certPath, a.Cert.NotAfter.Format(time.DateOnly))
	}
	return a, nil
}

// checkDirs refuses a directory for a name the spec does not have, or one
// adopt cannot read.
func checkDirs(s *cluster.Spec, nodes, clients map[string]string) error {
	for _, name := range sortedKeys(nodes) {
		if _, ok := s.Node(name); !ok {
			return input.Errorf("--node-dir %s=%s: the spec has no node %s", name, nodes[name], name)
		}
		if err := checkDir("--node-dir "+name+"=", nodes[name]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(clients) {
		if _, ok := s.Client(name); !ok {
			return input.Errorf("--client-dir %s=%s: the spec has no client %s", name, clients[name], name)
		}
		if err := checkDir("--client-dir "+name+"=", clients[name]); err != nil {
			return err
		}
	}
	return nil
}

// readSources finds the pairs in the operator's directories, by target.
func readSources(inv *pki.Inventory, nodes, clients map[string]string, authority *ca.CA) (map[string]*source, error) {
	out := map[string]*source{}
	for _, t := range inv.Targets {
		dir, ok := nodes[t.Owner]
		if !t.OwnerNode {
			dir, ok = clients[t.Owner]
		}
		if !ok {
			continue
		}
		src, err := findPair(dir, t, authority)
		if err != nil {
			return nil, err
		}
		if err := checkUser(inv.Spec, src); err != nil {
			return nil, err
		}
		if src != nil {
			out[t.ID] = src
		}
	}
	return out, nil
}

// compare decides, per target, what adopt takes: the operator's pair when
// it is what the member serves, else the served certificate as held; and
// collects every way the cluster differs from the spec.
func compare(inv *pki.Inventory, rep *Report, sources map[string]*source, authority *ca.CA) issue.Adoption {
	a := issue.Adoption{Pairs: map[string]pki.Pair{}, Held: map[string][]byte{}}
	for _, p := range rep.Ports {
		if p.Err != nil {
			rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: no certificate seen: %v", p.Name(), p.Err))
		}
		for _, pr := range p.Problems {
			rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: serial %s %s", p.Name(), pki.ShortSerial(certx.Serial(p.Cert)), pr))
		}
	}
	for _, st := range rep.Strangers {
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("member %s is in the cluster but not in the spec", st))
	}
	for _, t := range inv.Targets {
		var seen *Port
		for i, p := range rep.Ports {
			if p.Node == t.Owner && t.OwnerNode && p.Kind == t.Kind.Name && p.Cert != nil {
				seen = &rep.Ports[i]
			}
		}
		src := sources[t.ID]
		switch {
		case src != nil && seen != nil && !bytes.Equal(src.cert.Raw, seen.Cert.Raw):
			rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: %s (serial %s) is not what %s serves (serial %s); not imported",
				t.ID, src.certPath, pki.ShortSerial(certx.Serial(src.cert)), seen.Name(), pki.ShortSerial(certx.Serial(seen.Cert))))
		case src != nil:
			a.Pairs[t.ID] = src.pair
			rep.Imported[t.ID] = src.certPath
			continue
		}
		if seen != nil && authority.Verify(seen.Cert, t.Usage(), validAt(seen.Cert, authority)) == nil {
			a.Held[t.ID] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: seen.Cert.Raw})
			rep.Held[t.ID] = seen.Cert
			continue
		}
		rep.Missing = append(rep.Missing, t.ID)
	}
	return a
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
