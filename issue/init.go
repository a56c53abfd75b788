package issue

import (
	"context"
	"crypto/x509"
	"encoding/json"
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
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pkilock"
	"github.com/etcdpki/etcdpki/pki"
)

// Options control Init.
type Options struct {
	// Out receives one line per certificate and file: created, reused...
	Out io.Writer
	// Now anchors validity checks and new certificates; nil means time.Now.
	Now func() time.Time
	// LockHeld says the caller already holds the PKI directory's lock
	// (rotate does, around its whole run); otherwise Init, Renew and One
	// take it themselves before their first write.
	LockHeld bool
	// SpecYAML, when set, is written to PKI/etcdpki.yaml with the other
	// files, so that a PKI made from flags alone can be managed later:
	// every command given --dir and no --spec reads it there.
	SpecYAML []byte
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

// lock takes the PKI directory's lock unless the caller holds it. A nil
// Held releases as a no-op.
func (o Options) lock(pki string) (*pkilock.Held, error) {
	if o.LockHeld {
		return nil, nil
	}
	return pkilock.Acquire(pki)
}

// Result lists what Init did, by certificate ID or file path.
type Result struct {
	Created []string
	Reused  []string
	Written []string
}

// inputError is a problem with the operator's files or settings: an
// input.Error, so the CLI exits 2 for it and nothing is changed.
func inputError(format string, args ...any) error {
	return &input.Error{Err: fmt.Errorf(format, args...)}
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
	// dirs are the directories above the stores that etcdpki owns: made
	// or forced to 0700 (they hold keys, or lead to them).
	dirs []string
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

// initPlan is everything Init will write, worked out without writing.
type initPlan struct {
	pl        *plan
	res       *Result
	lines     []string
	authority *ca.CA
	caCreated bool
	// fresh holds the pairs this plan signed, by target ID, so that the
	// plan made again under the lock reuses them instead of signing twice.
	fresh map[string]signed
}

type signed struct{ cert, key []byte }

// Init creates whatever the spec needs and is missing, and reuses whatever
// exists and is valid. It never replaces an existing CA or certificate:
// anything present but unusable is reported as an input error, and it is
// all checked before the first byte is written, so bad input changes
// nothing on disk.
//
// It plans twice: once before taking the PKI directory's lock, so that
// bad input is refused before even the lock file is made, and again under
// the lock (reusing the keys signed the first time), so that what it
// writes is decided from the files as they are while no one else writes.
// A failure while writing takes back everything this run wrote.
func Init(ctx context.Context, s *cluster.Spec, o Options) (*Result, error) {
	pre, err := planInit(ctx, s, o, nil)
	if err != nil {
		return nil, err
	}
	// The lock lives in the PKI directory, so a first init makes it first
	// (and removes it again, lock and all, if the run fails).
	var pkiDir atomicdir.Batch
	if _, err := os.Stat(s.PKIDir); errors.Is(err, fs.ErrNotExist) {
		if err := pkiDir.Dir(s.PKIDir); err != nil {
			pkiDir.Abort()
			return nil, err
		}
	}
	fail := func(err error) (*Result, error) {
		if pkiDir.Created(s.PKIDir) {
			os.Remove(filepath.Join(s.PKIDir, pkilock.File))
		}
		pkiDir.Abort()
		return nil, err
	}
	held, err := o.lock(s.PKIDir)
	if err != nil {
		// The holder works in the directory we made: leave it be.
		return nil, err
	}
	defer held.Release()
	ip, err := planInit(ctx, s, o, pre)
	if err != nil {
		return fail(err)
	}
	var b atomicdir.Batch
	if err := ip.pl.write(&b, ip.res); err != nil {
		b.Abort()
		return fail(err)
	}
	_ = pkiDir.Commit() // the PKI directory stays: the run succeeded
	for _, l := range ip.lines {
		o.printf("%s", l)
	}
	for _, f := range ip.pl.configs {
		rel, _ := filepath.Rel(s.PKIDir, f.Name)
		if slices.Contains(ip.res.Written, f.Name) {
			o.printf("[config] wrote %s", rel)
		} else {
			o.printf("[config] unchanged %s", rel)
		}
	}
	return ip.res, nil
}

// planInit works out what Init writes. pre, when set, is the plan made
// before the lock: its new CA and pairs are reused where they still fit.
func planInit(ctx context.Context, s *cluster.Spec, o Options, pre *initPlan) (*initPlan, error) {
	now := o.now()
	p := pki.Paths{PKI: s.PKIDir}
	ip := &initPlan{res: &Result{}, pl: &plan{byDir: map[string]*pending{}}, fresh: map[string]signed{}}
	res, pl := ip.res, ip.pl
	printf := func(format string, args ...any) { ip.lines = append(ip.lines, fmt.Sprintf(format, args...)) }

	var reuseCA *ca.CA
	if pre != nil && pre.caCreated {
		reuseCA = pre.authority
	}
	authority, created, err := loadOrCreateCA(s, p, now, reuseCA)
	if err != nil {
		return nil, err
	}
	ip.authority, ip.caCreated = authority, created
	if created {
		printf("[ca] created %s (%s, valid until %s)", authority.Cert.Subject.CommonName, ca.KeyDescription(authority.Cert.PublicKey), authority.Cert.NotAfter.Format(time.DateOnly))
		res.Created = append(res.Created, "etcd-ca")
	} else {
		printf("[ca] reused %s (%s)", authority.Cert.Subject.CommonName, p.CACert())
		res.Reused = append(res.Reused, "etcd-ca")
	}
	pl.add(p.CADir(), atomicdir.File{Name: "ca.crt", Data: authority.CertPEM, Mode: atomicdir.CertMode})
	pl.add(p.CADir(), atomicdir.File{Name: "ca.key", Data: authority.KeyPEM, Mode: atomicdir.CAKeyMode})

	targets := pki.New(s).Targets
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
		if f, ok := pre.freshFor(t.ID, authority); ok && pairs[i].created {
			pairs[i].cert, pairs[i].key = f.cert, f.key
		}
	}
	// Key generation and signing are CPU-bound and independent: use every
	// core.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	errs := make([]error, len(targets))
	for i := range pairs {
		if !pairs[i].created || pairs[i].cert != nil {
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
			printf("[certs] created %s%s", t.ID, describeHosts(t.Hosts))
			res.Created = append(res.Created, t.ID)
			ip.fresh[t.ID] = signed{pairs[i].cert, pairs[i].key}
		} else {
			printf("[certs] reused %s%s", t.ID, pairs[i].warn)
			res.Reused = append(res.Reused, t.ID)
		}
		pl.add(t.Dir, atomicdir.File{Name: t.CertName, Data: pairs[i].cert, Mode: atomicdir.CertMode})
		pl.add(t.Dir, atomicdir.File{Name: t.KeyName, Data: pairs[i].key, Mode: atomicdir.KeyMode})
	}

	if err := planConfigs(s, p, pl); err != nil {
		return nil, err
	}
	if o.SpecYAML != nil {
		pl.configs = append(pl.configs, atomicdir.File{Name: p.Spec(), Data: o.SpecYAML, Mode: configMode})
	}
	pl.dirs = ownedDirs(s, p)
	if err := checkWritable(s.PKIDir, pl); err != nil {
		return nil, err
	}
	return ip, nil
}

// freshFor returns the pair the earlier plan signed for id, if it was
// signed by authority.
func (ip *initPlan) freshFor(id string, authority *ca.CA) (signed, bool) {
	if ip == nil || !ip.authority.Cert.Equal(authority.Cert) {
		return signed{}, false
	}
	f, ok := ip.fresh[id]
	return f, ok
}

// ownedDirs are the directories above the stores that hold bundles: the
// PKI directory, nodes/ and each node's, the apiserver's, clients/ and
// each client's.
func ownedDirs(s *cluster.Spec, p pki.Paths) []string {
	dirs := []string{s.PKIDir}
	if len(s.Nodes) > 0 {
		dirs = append(dirs, filepath.Join(s.PKIDir, "nodes"))
	}
	for _, n := range s.Nodes {
		dirs = append(dirs, p.NodeDir(n.Name))
	}
	for _, c := range s.Clients {
		switch c.Name {
		case cluster.ClientHealthcheck:
		case cluster.ClientAPIServer:
			dirs = append(dirs, p.APIServerDir())
		default:
			dirs = append(dirs, filepath.Join(s.PKIDir, "clients"), p.ClientDir(c.Name))
		}
	}
	return dirs
}

// write puts the plan on disk as one batch: every new version is written
// and synced, then each store switches (the CA's first, so no leaf is ever
// in effect without its issuer), then the files are renamed into place
// in plan order, and the switches are synced. The caller aborts b when
// write fails, which takes back whatever it did.
func (pl *plan) write(b *atomicdir.Batch, res *Result) error {
	for _, d := range pl.dirs {
		if err := b.Dir(d); err != nil {
			return err
		}
	}
	for _, st := range pl.stores {
		if _, err := b.Update(st.dir, st.files, checkPairs); err != nil {
			return fmt.Errorf("write %s: %w", st.dir, err)
		}
	}
	changed := make([]bool, len(pl.configs))
	for i, f := range pl.configs {
		var err error
		if changed[i], err = b.WriteFile(f.Name, f.Data, f.Mode); err != nil {
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return err
	}
	for i, f := range pl.configs {
		if changed[i] {
			res.Written = append(res.Written, f.Name)
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
// when neither exists (fresh, when set, is the one to use then). One
// without the other is an error: never guess. The files are read as the
// next write will see them, so a crash that left the CA's version
// complete but a link missing reads as the CA, not as no CA.
func loadOrCreateCA(s *cluster.Spec, p pki.Paths, now time.Time, fresh *ca.CA) (*ca.CA, bool, error) {
	if err := checkPKIDir(s.PKIDir); err != nil {
		return nil, false, err
	}
	certPEM, certErr := atomicdir.Read(p.CADir(), "ca.crt")
	keyPEM, keyErr := atomicdir.Read(p.CADir(), "ca.key")
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		if fresh != nil {
			return fresh, true, nil
		}
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
func LoadCA(dir string) (*ca.CA, error) {
	p := pki.Paths{PKI: dir}
	certPEM, err := atomicdir.Read(p.CADir(), "ca.crt")
	if err != nil {
		return nil, readError(p.CACert(), err)
	}
	keyPEM, err := atomicdir.Read(p.CADir(), "ca.key")
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
	data, err := atomicdir.Read(dir, "ca.crt")
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
func existingPair(t pki.Target, a *ca.CA, now time.Time) (certPEM, keyPEM []byte, warn string, err error) {
	certPEM, keyPEM, err = readStoredPair(t)
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
func validatePair(t pki.Target, a *ca.CA, certPEM, keyPEM []byte) (*x509.Certificate, error) {
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

func signTarget(a *ca.CA, s *cluster.Spec, t pki.Target, reuseKey []byte, now time.Time) ([]byte, []byte, error) {
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
//
// A node's initial-cluster-state is "new" for the members the cluster was
// first bootstrapped with and "existing" for members added later. That is
// decided from PKI/initial-cluster.json, written with the first configs
// and renamed into place before any of them, not from which configs
// exist: a run killed between two nodes' configs must not leave members
// of a cluster that never started marked "existing".
func planConfigs(s *cluster.Spec, p pki.Paths, pl *plan) error {
	rec, err := readInitialCluster(p)
	if err != nil {
		return err
	}
	if rec == nil {
		rec = &initialCluster{}
		legacy := false
		for _, n := range s.Nodes {
			if _, err := os.Lstat(p.NodeConfig(n.Name)); err == nil {
				legacy = true
			}
		}
		for _, n := range s.Nodes {
			if legacy {
				// Configs but no record: a PKI from an etcdpki that kept
				// no record. Its members are the ones whose config says
				// "new"; the others joined later.
				if old, err := ReadNodeConfig(p.NodeConfig(n.Name)); err != nil || old.InitialClusterState != "new" {
					continue
				}
			}
			rec.Members = append(rec.Members, n.Name)
		}
		data, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return err
		}
		// First among the files: see above.
		pl.configs = append(pl.configs, atomicdir.File{Name: p.InitialCluster(), Data: append(data, '\n'), Mode: configMode})
	}
	for _, n := range s.Nodes {
		state := n.InitialClusterState
		if state == "" {
			state = "existing"
			if slices.Contains(rec.Members, n.Name) {
				state = "new"
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

// initialCluster is PKI/initial-cluster.json: the members the cluster was
// bootstrapped with. etcd ignores initial-cluster-state once a member has
// data, so these stay "new" for good; every member added later gets
// "existing".
type initialCluster struct {
	Members []string `json:"members"`
}

func readInitialCluster(p pki.Paths) (*initialCluster, error) {
	data, err := os.ReadFile(p.InitialCluster())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, readError(p.InitialCluster(), err)
	}
	var rec initialCluster
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, inputError("%s: %v (it lists the members the cluster was first started with)", p.InitialCluster(), err)
	}
	return &rec, nil
}

// readStoredPair is readPair through atomicdir.Read: the pair as the next
// write will see it, even where a crash left a link missing.
func readStoredPair(t pki.Target) (certPEM, keyPEM []byte, err error) {
	certPEM, certErr := atomicdir.Read(t.Dir, t.CertName)
	keyPEM, keyErr := atomicdir.Read(t.Dir, t.KeyName)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, nil
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		// Say what is wrong with the key before that the cert is missing.
		return nil, nil, readError(t.KeyPath(), keyErr)
	case certErr != nil:
		return nil, nil, readError(t.CertPath(), certErr)
	case keyErr != nil:
		return nil, nil, readError(t.KeyPath(), keyErr)
	}
	return certPEM, keyPEM, nil
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
// nearest existing ancestor) can be written, and that no file it writes
// is in the way (a directory, an immutable or append-only file), so a
// bad tree fails before the first write rather than halfway.
func checkWritable(pki string, pl *plan) error {
	dirs := map[string]bool{pki: true}
	var files []string
	for _, d := range pl.dirs {
		dirs[d] = true
	}
	for _, st := range pl.stores {
		dirs[st.dir] = true
		for _, f := range st.files {
			files = append(files, filepath.Join(st.dir, f.Name))
		}
	}
	for _, f := range pl.configs {
		dirs[filepath.Dir(f.Name)] = true
		files = append(files, f.Name)
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
		if info.Mode().Perm()&0o200 == 0 || syscall.Access(existing, 2 /* W_OK */) != nil || immutable(existing) {
			what := "directory"
			if existing == pki {
				what = "pki dir"
			}
			return inputError("%s %s: read-only (mode %04o); nothing was written", what, existing, info.Mode().Perm())
		}
	}
	for _, f := range files {
		info, err := os.Lstat(f)
		if err != nil {
			continue // missing: created; unreadable: the directory check said
		}
		if info.IsDir() {
			return inputError("%s: is a directory, where etcdpki writes a file; nothing was written", f)
		}
		if info.Mode().IsRegular() && immutable(f) {
			return inputError("%s: immutable or append-only (chattr); nothing was written", f)
		}
	}
	return nil
}
