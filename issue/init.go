package issue

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// Options control Init.
type Options struct {
	// Out receives one line per certificate and file: created, reused...
	Out io.Writer
	// Now anchors validity checks and new certificates; nil means time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) printf(format string, args ...any) {
	if o.Out != nil {
		fmt.Fprintf(o.Out, format+"\n", args...)
	}
}

// Result lists what Init did, by certificate ID or file path.
type Result struct {
	Created []string
	Reused  []string
	Written []string
}

// inputError wraps errors about the operator's files as ca.InputError, so
// the CLI exits 2 for them.
func inputError(format string, args ...any) error {
	return &ca.InputError{Err: fmt.Errorf(format, args...)}
}

// pending collects the files to put into one atomic store.
type pending struct {
	dir   string
	files []atomicdir.File
}

type plan struct {
	stores  []*pending
	byDir   map[string]*pending
	configs []atomicdir.File // Name is a full path here
}

// add puts f into dir's next version; a file of the same name added
// before (a bundle's ca.crt, once per certificate in it) is replaced.
func (pl *plan) add(dir string, f atomicdir.File) {
	st := pl.byDir[dir]
	if st == nil {
		st = &pending{dir: dir}
		pl.byDir[dir] = st
		pl.stores = append(pl.stores, st)
	}
	for i := range st.files {
		if st.files[i].Name == f.Name {
			st.files[i] = f
			return
		}
	}
	st.files = append(st.files, f)
}

// Init creates whatever the spec needs and is missing, and reuses whatever
// exists and is valid. It never replaces an existing CA or certificate:
// anything present but unusable is reported as an input error, and it is
// all checked before the first byte is written, so bad input changes
// nothing on disk.
func Init(ctx context.Context, s *cluster.Spec, o Options) (*Result, error) {
	now := o.now()
	p := Paths{PKI: s.PKIDir}
	res := &Result{}
	pl := &plan{byDir: map[string]*pending{}}

	authority, created, err := loadOrCreateCA(s, p, now)
	if err != nil {
		return nil, err
	}
	if created {
		o.printf("[ca] created %s (%s, valid until %s)", authority.Cert.Subject.CommonName, ca.KeyDescription(authority.Cert.PublicKey), authority.Cert.NotAfter.Format(time.DateOnly))
		res.Created = append(res.Created, "etcd-ca")
	} else {
		o.printf("[ca] reused %s (%s)", authority.Cert.Subject.CommonName, p.CACert())
		res.Reused = append(res.Reused, "etcd-ca")
	}
	pl.add(p.CADir(), atomicdir.File{Name: "ca.crt", Data: authority.CertPEM, Mode: atomicdir.CertMode})
	pl.add(p.CADir(), atomicdir.File{Name: "ca.key", Data: authority.KeyPEM, Mode: atomicdir.CAKeyMode})

	targets := Targets(s)
	type pair struct {
		cert, key []byte
		warn      string
		created   bool
	}
	pairs := make([]pair, len(targets))
	bundleCA := map[string]bool{}
	for i, t := range targets {
		if !bundleCA[t.CADir] {
			if err := checkBundleCA(t.CADir, authority); err != nil {
				return nil, err
			}
			bundleCA[t.CADir] = true
		}
		certPEM, keyPEM, warn, err := existingPair(t, authority, now)
		if err != nil {
			return nil, err
		}
		pairs[i] = pair{cert: certPEM, key: keyPEM, warn: warn, created: certPEM == nil}
	}
	// Key generation and signing are CPU-bound and independent: use every
	// core.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	errs := make([]error, len(targets))
	for i := range pairs {
		if !pairs[i].created {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			pairs[i].cert, pairs[i].key, errs[i] = signTarget(authority, s, targets[i], nil, now)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, t := range targets {
		pl.add(t.CADir, atomicdir.File{Name: "ca.crt", Data: authority.CertPEM, Mode: atomicdir.CertMode})
		if pairs[i].created {
			o.printf("[certs] created %s%s", t.ID, describeHosts(t.Hosts))
			res.Created = append(res.Created, t.ID)
		} else {
			o.printf("[certs] reused %s%s", t.ID, pairs[i].warn)
			res.Reused = append(res.Reused, t.ID)
		}
		pl.add(t.Dir, atomicdir.File{Name: t.CertName, Data: pairs[i].cert, Mode: atomicdir.CertMode})
		pl.add(t.Dir, atomicdir.File{Name: t.KeyName, Data: pairs[i].key, Mode: atomicdir.KeyMode})
	}

	if err := planConfigs(s, p, pl); err != nil {
		return nil, err
	}
	if err := checkWritable(s.PKIDir, pl); err != nil {
		return nil, err
	}

	// Everything is known good: write. The CA goes first so that a crash
	// never leaves leaves whose issuer is missing.
	if err := pl.write(s.PKIDir, o, res); err != nil {
		return nil, err
	}
	return res, nil
}

// write puts the plan on disk as one batch: every new version is written
// and synced, then each store switches (the CA's first, so no leaf is ever
// in effect without its issuer) and the switches are synced.
func (pl *plan) write(pki string, o Options, res *Result) error {
	var b atomicdir.Batch
	for _, st := range pl.stores {
		if _, err := b.Update(st.dir, st.files, checkPairs); err != nil {
			b.Abort()
			return fmt.Errorf("write %s: %w", st.dir, err)
		}
	}
	changed := make([]bool, len(pl.configs))
	for i, f := range pl.configs {
		var err error
		if changed[i], err = b.WriteFile(f.Name, f.Data, f.Mode); err != nil {
			b.Abort()
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return err
	}
	for i, f := range pl.configs {
		rel, _ := filepath.Rel(pki, f.Name)
		if changed[i] {
			o.printf("[config] wrote %s", rel)
			res.Written = append(res.Written, f.Name)
		} else {
			o.printf("[config] unchanged %s", rel)
		}
	}
	return nil
}

func describeHosts(hosts []string) string {
	if len(hosts) == 0 {
		return ""
	}
	return " (SANs " + strings.Join(hosts, ", ") + ")"
}

// loadOrCreateCA loads PKI/etcd/ca.{crt,key}, or creates a CA in memory
// when neither exists. One without the other is an error: never guess.
func loadOrCreateCA(s *cluster.Spec, p Paths, now time.Time) (*ca.CA, bool, error) {
	if err := checkPKIDir(s.PKIDir); err != nil {
		return nil, false, err
	}
	certPEM, certErr := os.ReadFile(p.CACert())
	keyPEM, keyErr := os.ReadFile(p.CAKey())
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		a, err := ca.Create(s.CA, now)
		return a, true, err
	case certErr != nil:
		return nil, false, readError(p.CACert(), certErr)
	case keyErr != nil:
		return nil, false, readError(p.CAKey(), keyErr)
	}
	a, err := ca.ParseFiles(certPEM, keyPEM, p.CACert(), p.CAKey())
	if err != nil {
		return nil, false, err
	}
	if now.After(a.Cert.NotAfter) {
		return nil, false, inputError("%s: CA expired on %s; a new CA must be rolled out in stages", p.CACert(), a.Cert.NotAfter.Format(time.DateOnly))
	}
	return a, false, nil
}

// LoadCA loads the PKI directory's CA for signing.
func LoadCA(pki string) (*ca.CA, error) {
	p := Paths{PKI: pki}
	certPEM, err := os.ReadFile(p.CACert())
	if err != nil {
		return nil, readError(p.CACert(), err)
	}
	keyPEM, err := os.ReadFile(p.CAKey())
	if err != nil {
		return nil, readError(p.CAKey(), err)
	}
	return ca.ParseFiles(certPEM, keyPEM, p.CACert(), p.CAKey())
}

func readError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return inputError("%s: does not exist (run etcdpki init first)", path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return inputError("%s: cannot read: %v", path, err)
}

// checkBundleCA makes sure a bundle's ca.crt, if present, is our CA.
func checkBundleCA(dir string, a *ca.CA) error {
	path := filepath.Join(dir, "ca.crt")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return readError(path, err)
	}
	c, err := ca.ParseCert(data)
	if err != nil {
		return inputError("%s: %v", path, err)
	}
	if !c.Equal(a.Cert) {
		return inputError("%s: holds CA %q, not this PKI's CA %q; refusing to mix CAs", path, c.Subject.CommonName, a.Cert.Subject.CommonName)
	}
	return nil
}

// existingPair returns an existing valid pair, nil when there is none, or
// an input error when what is there can't be used. A pair that is merely
// due is reused: renewing is `certs renew`'s and rotate's job.
func existingPair(t Target, a *ca.CA, now time.Time) (certPEM, keyPEM []byte, warn string, err error) {
	certPEM, keyPEM, err = readPair(t)
	info, pc := inspect(t, a, certPEM, keyPEM, err, 0, now)
	switch info.Status {
	case StatusMissing:
		return nil, nil, "", nil
	case StatusInvalid:
		return nil, nil, "", pc.err
	case StatusExpired:
		return nil, nil, "", inputError("%s: expired on %s; run: etcdpki certs renew %s", t.CertPath(), info.Expires.Format(time.DateOnly), t.ID)
	}
	if pc.sanNote != "" {
		warn = fmt.Sprintf(" (SANs differ from the spec: %s; run: etcdpki certs renew %s)", pc.sanNote, t.ID)
	}
	return certPEM, keyPEM, warn, nil
}

// validatePair checks that a pair belongs together and was issued by a
// for the target's usage. Expiry is the caller's business.
func validatePair(t Target, a *ca.CA, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	cert, err := ca.ParseCert(certPEM)
	if err != nil {
		return nil, inputError("%s: %v", t.CertPath(), err)
	}
	key, err := ca.ParseKey(keyPEM)
	if err != nil {
		return nil, inputError("%s: %v", t.KeyPath(), err)
	}
	if !ca.KeyMatches(cert, key.Public()) {
		return nil, inputError("%s: key does not match certificate %s", t.KeyPath(), t.CertPath())
	}
	// Verify at a time the certificate is valid, so that expiry is
	// reported as expiry and not as a chain error.
	at := cert.NotBefore
	if a.Cert.NotBefore.After(at) {
		at = a.Cert.NotBefore
	}
	at = at.Add(time.Second)
	if err := a.Verify(cert, t.Usage(), at); err != nil {
		return nil, inputError("%s: not a valid %s certificate from this PKI's CA: %v", t.CertPath(), t.Kind.Name, err)
	}
	return cert, nil
}

// sanDiff compares a certificate's SANs with the wanted hosts.
func sanDiff(cert *x509.Certificate, want []string) (missing, extra []string) {
	have := ca.SANs(cert)
	for _, h := range want {
		if !slices.Contains(have, h) {
			missing = append(missing, h)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			extra = append(extra, h)
		}
	}
	return missing, extra
}

func signTarget(a *ca.CA, s *cluster.Spec, t Target, reuseKey []byte, now time.Time) ([]byte, []byte, error) {
	certPEM, keyPEM, err := a.Sign(ca.Request{
		Kind: t.Kind, CommonName: t.CommonName, Organization: t.Organization, Hosts: t.Hosts,
		Key: s.Leaf.Key, Validity: s.Leaf.Validity, ReuseKey: reuseKey, Now: now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create %q certificate: %w", t.ID, err)
	}
	return certPEM, keyPEM, nil
}

// checkPairs is the last check before a store switches: every NAME.crt
// with a NAME.key beside it must match it.
func checkPairs(files map[string][]byte) error {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasSuffix(n, ".crt") {
			continue
		}
		key, ok := files[strings.TrimSuffix(n, ".crt")+".key"]
		if !ok {
			continue
		}
		if err := ca.CheckPair(files[n], key); err != nil {
			return fmt.Errorf("pair %s: %w", n, err)
		}
	}
	return nil
}

// planConfigs renders every node's etcd.conf.yml and the apiserver files.
func planConfigs(s *cluster.Spec, p Paths, pl *plan) error {
	bootstrapped := false
	for _, n := range s.Nodes {
		if _, err := os.Stat(p.NodeConfig(n.Name)); err == nil {
			bootstrapped = true
		}
	}
	for _, n := range s.Nodes {
		state := n.InitialClusterState
		if state == "" {
			state = "new"
			if old, err := ReadNodeConfig(p.NodeConfig(n.Name)); err == nil && old.InitialClusterState != "" {
				state = old.InitialClusterState
			} else if bootstrapped {
				// The cluster already exists: a member added now joins it.
				state = "existing"
			}
		}
		data, err := NodeConfig(s, n, state).Render()
		if err != nil {
			return err
		}
		pl.configs = append(pl.configs, atomicdir.File{Name: p.NodeConfig(n.Name), Data: data, Mode: configMode})
	}
	flags := strings.Join(APIServerFlags(s), "\n") + "\n"
	pl.configs = append(pl.configs, atomicdir.File{Name: p.APIServerFlags(), Data: []byte(flags), Mode: configMode})
	kubeadm, err := KubeadmExternal(s)
	if err != nil {
		return err
	}
	pl.configs = append(pl.configs, atomicdir.File{Name: p.KubeadmExternal(), Data: kubeadm, Mode: configMode})
	return nil
}

// configMode: configs hold paths, not secrets, but live in 0700 bundles.
const configMode fs.FileMode = 0o644

// checkPKIDir rejects a PKI directory that is not a directory, or that we
// could read but not write, before anything is created.
func checkPKIDir(dir string) error {
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // checkWritable looks at the parent.
	}
	if err != nil {
		return readError(dir, err)
	}
	if !info.IsDir() {
		return inputError("pki dir %s: not a directory", dir)
	}
	if info.Mode().Perm()&0o500 != 0o500 {
		// Root ignores permission bits, but an operator who took the
		// bits away meant it.
		return inputError("pki dir %s: not readable (mode %04o)", dir, info.Mode().Perm())
	}
	if _, err := os.ReadDir(dir); err != nil {
		return readError(dir, err)
	}
	return nil
}

// checkWritable makes sure every directory the plan writes into (or its
// nearest existing ancestor) can be written, so a read-only tree fails
// before the first write rather than halfway.
func checkWritable(pki string, pl *plan) error {
	dirs := map[string]bool{pki: true}
	for _, st := range pl.stores {
		dirs[st.dir] = true
	}
	for _, f := range pl.configs {
		dirs[filepath.Dir(f.Name)] = true
	}
	var list []string
	for d := range dirs {
		list = append(list, d)
	}
	sort.Strings(list)
	for _, d := range list {
		existing := d
		for {
			info, err := os.Stat(existing)
			if err == nil {
				if !info.IsDir() {
					return inputError("%s: not a directory", existing)
				}
				break
			}
			parent := filepath.Dir(existing)
			if parent == existing {
				break
			}
			existing = parent
		}
		info, err := os.Stat(existing)
		if err != nil {
			return readError(existing, err)
		}
		if info.Mode().Perm()&0o200 == 0 || syscall.Access(existing, 2 /* W_OK */) != nil {
			what := "directory"
			if existing == pki {
				what = "pki dir"
			}
			return inputError("%s %s: read-only (mode %04o); nothing was written", what, existing, info.Mode().Perm())
		}
	}
	return nil
}
