package issue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
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
	// Join, when set, writes that node's configs for joining a running
	// cluster (see Join).
	Join *Join
	// APIServerEndpoints, when set, are the endpoints of the apiserver's
	// files instead of every spec node's: a member being added serves
	// clients only once promoted.
	APIServerEndpoints []string
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
func Init(ctx context.Context, inv *pki.Inventory, o Options) (*Result, error) {
	s := inv.Spec
	pre, err := planInit(ctx, inv, o, nil)
	if err != nil {
		return nil, err
	}
	fr, held, err := lockNewPKIDir(s.PKIDir, o)
	if err != nil {
		return nil, err
	}
	defer held.Release()
	fail := fr.fail
	ip, err := planInit(ctx, inv, o, pre)
	if err != nil {
		return fail(err)
	}
	if err := writeAuthDefault(inv); err != nil {
		return fail(err)
	}
	if err := fr.commit(ip.pl, ip.res); err != nil {
		return nil, err
	}
	for _, l := range ip.lines {
		o.printf("%s", l)
	}
	if err := o.tighten(inv); err != nil {
		return ip.res, err
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
func planInit(ctx context.Context, inv *pki.Inventory, o Options, pre *initPlan) (*initPlan, error) {
	now := o.now()
	p := inv.Paths
	ip := &initPlan{res: &Result{}, pl: &plan{byDir: map[string]*pending{}}, fresh: map[string]signed{}}
	if err := ip.planCA(inv, now, pre); err != nil {
		return nil, err
	}
	pairs, err := ip.readPairs(inv, now, pre)
	if err != nil {
		return nil, err
	}
	if err := signMissing(ctx, ip.authority, inv, pairs, now); err != nil {
		return nil, err
	}
	ip.planPairs(inv, pairs)
	if err := planConfigs(inv, ip.pl, o); err != nil {
		return nil, err
	}
	if o.SpecYAML != nil {
		ip.pl.configs = append(ip.pl.configs, atomicdir.File{Name: p.Spec(), Data: o.SpecYAML, Mode: configMode})
	}
	ip.pl.dirs = inv.OwnedDirs()
	if err := checkWritable(inv.Spec.PKIDir, ip.pl); err != nil {
		return nil, err
	}
	return ip, nil
}

func (ip *initPlan) printf(format string, args ...any) {
	ip.lines = append(ip.lines, fmt.Sprintf(format, args...))
}

// planCA loads the CA, or creates it (reusing the one the earlier plan
// created), and refuses to run in the middle of a CA rotation.
func (ip *initPlan) planCA(inv *pki.Inventory, now time.Time, pre *initPlan) error {
	p := inv.Paths
	var reuseCA *ca.CA
	if pre != nil && pre.caCreated {
		reuseCA = pre.authority
	}
	authority, created, err := loadOrCreateCA(inv, now, reuseCA)
	if err != nil {
		return err
	}
	if err := refuseDuringCARotation(p, "init"); err != nil {
		return err
	}
	ip.authority, ip.caCreated = authority, created
	if created {
		ip.printf("[ca] created %s (%s, valid until %s)", authority.Cert.Subject.CommonName, certx.KeyDescription(authority.Cert.PublicKey), authority.Cert.NotAfter.Format(time.DateOnly))
		ip.res.Created = append(ip.res.Created, "etcd-ca")
	} else {
		ip.printf("[ca] reused %s (%s)", authority.Cert.Subject.CommonName, p.CACert())
		ip.res.Reused = append(ip.res.Reused, "etcd-ca")
	}
	ip.pl.add(p.CAStore(), atomicdir.File{Name: pki.CAFile, Data: authority.CertPEM, Mode: atomicdir.CertMode})
	for _, f := range authority.StoreFiles() {
		ip.pl.add(p.CAStore(), f)
	}
	crl, err := initCRL(inv, authority, now)
	if err != nil {
		return err
	}
	ip.pl.addCRL(p, inv.Spec, crl)
	return nil
}

// initPair is one target's pair as init will write it.
type initPair struct {
	pki.Pair
	warn    string
	created bool
	// held is a certificate in use on its host without a key here
	// (adopt recorded it): init leaves it to rotate, which renews it
	// when due and deploys and proves the new pair.
	held bool
}

// readPairs reads every target's existing pair and checks every bundle's
// CA file; a good file holding more than it should is noted as repaired.
func (ip *initPlan) readPairs(inv *pki.Inventory, now time.Time, pre *initPlan) ([]initPair, error) {
	pairs := make([]initPair, len(inv.Targets))
	bundleCA := map[string]bool{}
	for i, t := range inv.Targets {
		if !bundleCA[t.CADir] {
			if repaired, err := pki.CheckBundleCA(t.CADir, ip.authority); repaired != nil {
				ip.printf("[repair] %v: rewritten with the CA certificate only", err)
			} else if err != nil {
				return nil, err
			}
			bundleCA[t.CADir] = true
		}
		pair, warn, repair, err := existingPair(t, ip.authority, now)
		if err != nil {
			return nil, err
		}
		if repair != "" {
			ip.printf("[repair] %s: rewritten without the extra PEM blocks", repair)
		}
		held := pair.Cert == nil && pki.Held(t)
		pairs[i] = initPair{Pair: pair, warn: warn, created: pair.Cert == nil && !held, held: held}
		if f, ok := pre.freshFor(t.ID, ip.authority); ok && pairs[i].created {
			pairs[i].Cert, pairs[i].Key = f.cert, f.key
		}
	}
	return pairs, nil
}

// signMissing signs a pair for every target that has none. Key generation
// and signing are CPU-bound and independent: it uses every core.
func signMissing(ctx context.Context, authority *ca.CA, inv *pki.Inventory, pairs []initPair, now time.Time) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	errs := make([]error, len(pairs))
	for i := range pairs {
		if !pairs[i].created || pairs[i].Cert != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			pairs[i].Cert, pairs[i].Key, errs[i] = signTarget(authority, inv.Spec, inv.Targets[i], nil, now)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// planPairs adds every pair and bundle CA file to the plan, and says
// which pairs were created and which reused.
func (ip *initPlan) planPairs(inv *pki.Inventory, pairs []initPair) {
	for i, t := range inv.Targets {
		ip.pl.add(t.CAStore(), atomicdir.File{Name: pki.CAFile, Data: ip.authority.CertPEM, Mode: atomicdir.CertMode})
		if pairs[i].held {
			ip.printf("[certs] held on the host %s (no key here; rotate renews it when due)", t.ID)
			continue
		}
		if pairs[i].created {
			ip.printf("[certs] created %s%s", t.ID, describeHosts(t.Hosts))
			ip.res.Created = append(ip.res.Created, t.ID)
			ip.fresh[t.ID] = signed{pairs[i].Cert, pairs[i].Key}
		} else {
			ip.printf("[certs] reused %s%s", t.ID, pairs[i].warn)
			ip.res.Reused = append(ip.res.Reused, t.ID)
		}
		ip.pl.add(t.Store(), atomicdir.File{Name: t.CertName, Data: pairs[i].Cert, Mode: atomicdir.CertMode})
		ip.pl.add(t.Store(), atomicdir.File{Name: t.KeyName, Data: pairs[i].Key, Mode: atomicdir.KeyMode})
	}
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

func describeHosts(hosts []string) string {
	if len(hosts) == 0 {
		return ""
	}
	return " (SANs " + strings.Join(hosts, ", ") + ")"
}

func signTarget(a *ca.CA, s *cluster.Spec, t pki.Target, reuseKey []byte, now time.Time) ([]byte, []byte, error) {
	r := t.Request(s.Leaf)
	r.ReuseKey, r.Now = reuseKey, now
	certPEM, keyPEM, err := a.Sign(r)
	if err != nil {
		return nil, nil, fmt.Errorf("create %q certificate: %w", t.ID, err)
	}
	return certPEM, keyPEM, nil
}

// planConfigs renders every node's etcd.conf.yml and the apiserver files.
//
// A node's initial-cluster-state is "new" for the members the cluster was
// first bootstrapped with and "existing" for members added later. That is
// decided from PKI/initial-cluster.json, written with the first configs
// and renamed into place before any of them, not from which configs
// exist: a run killed between two nodes' configs must not leave members
// of a cluster that never started marked "existing".
func planConfigs(inv *pki.Inventory, pl *plan, o Options) error {
	s, p := inv.Spec, inv.Paths
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
				if old, err := pki.ReadNodeConfig(p.NodeConfig(n.Name)); err != nil || old.InitialClusterState != "new" {
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
		c := pki.NodeConfig(s, n, state)
		if j := o.Join; j != nil && j.Name == n.Name {
			c.InitialCluster, c.InitialClusterState = j.InitialCluster, "existing"
		}
		data, err := c.Render()
		if err != nil {
			return err
		}
		pl.configs = append(pl.configs, atomicdir.File{Name: p.NodeConfig(n.Name), Data: data, Mode: configMode})
		pl.configs = append(pl.configs, atomicdir.File{Name: p.NodeEnv(n.Name), Data: pki.NodeEnvOf(c, n), Mode: configMode})
	}
	flags := strings.Join(apiServerFlags(inv, o), "\n") + "\n"
	pl.configs = append(pl.configs, atomicdir.File{Name: p.APIServerFlags(), Data: []byte(flags), Mode: configMode})
	kubeadm, err := kubeadmExternal(inv, o)
	if err != nil {
		return err
	}
	pl.configs = append(pl.configs, atomicdir.File{Name: p.KubeadmExternal(), Data: kubeadm, Mode: configMode})
	return nil
}
