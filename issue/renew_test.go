package issue

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

func TestRenew(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	p := pki.Paths{PKI: s.PKIDir}
	picked, missing := pki.Select(pki.New(s).Targets, []string{"etcd-node-1", "apiserver-etcd-client"})
	if len(missing) != 0 || len(picked) != 4 {
		t.Fatalf("select: %v missing %v", pki.IDs(picked), missing)
	}
	srv := filepath.Join(p.NodeCertDir("etcd-node-1"), "server.crt")
	oldCert, oldKey := mustRead(t, srv), mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key"))
	untouched := mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-2"), "server.crt"))
	var out bytes.Buffer
	got, err := Renew(context.Background(), pki.New(s), picked, RenewOptions{Options: Options{Out: &out}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("renewed %d", len(got))
	}
	for _, r := range got {
		if r.OldSerial == "" || r.NewSerial == r.OldSerial {
			t.Errorf("%s serial %s -> %s", r.Target.ID, r.OldSerial, r.NewSerial)
		}
		if c := readCert(t, r.Target.CertPath()); certx.Serial(c) != r.NewSerial {
			t.Errorf("%s on disk has serial %s, want %s", r.Target.ID, certx.Serial(c), r.NewSerial)
		}
	}
	if bytes.Equal(mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-1"), "server.key")), oldKey) {
		t.Error("renew kept the old key; a new key is the default")
	}
	if !bytes.Equal(untouched, mustRead(t, filepath.Join(p.NodeCertDir("etcd-node-2"), "server.crt"))) {
		t.Error("renew touched a certificate it was not asked to")
	}
	backup := got[0].Backup
	if !strings.HasPrefix(backup, p.Backups()) || !bytes.Equal(mustRead(t, filepath.Join(backup, "server.crt")), oldCert) ||
		!bytes.Equal(mustRead(t, filepath.Join(backup, "server.key")), oldKey) {
		t.Errorf("old pair not in backup %s", backup)
	}
	if info, _ := os.Stat(filepath.Join(backup, "server.key")); info.Mode().Perm() != 0o600 {
		t.Errorf("backup key mode %o", info.Mode().Perm())
	}
	if !strings.Contains(out.String(), "[renew] etcd-node-1/etcd-server: serial") {
		t.Errorf("output:\n%s", out.String())
	}
	// Init afterwards reuses the renewed files and changes nothing.
	before := snapshot(t, s.PKIDir)
	if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
		t.Fatal(err)
	}
	if snapshot(t, s.PKIDir) != before {
		t.Error("init after renew changed the tree")
	}
}

func TestRenewReuseKeyAndSANChange(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	moved := spec(t, strings.Replace(threeNodes, "ips: [10.0.0.12]", "ips: [10.0.0.12, 10.0.0.22]", 1), s.PKIDir)
	infos, err := pki.List(pki.New(moved), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for _, i := range infos {
		if i.Status == pki.StatusSANMismatch {
			stale = append(stale, i.Name)
		}
	}
	if strings.Join(stale, " ") != "etcd-node-2/etcd-server etcd-node-2/etcd-peer" {
		t.Errorf("SAN mismatch reported for %v", stale)
	}
	// init reuses such a certificate but says how to fix it.
	var out bytes.Buffer
	if _, err := Init(context.Background(), pki.New(moved), Options{Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "reused etcd-node-2/etcd-peer (SANs differ from the spec: spec wants SANs [10.0.0.22] more and [] fewer; run: etcdpki certs renew etcd-node-2/etcd-peer)") {
		t.Errorf("init does not warn about the SAN change:\n%s", out.String())
	}
	picked, _ := pki.Select(pki.New(moved).Targets, []string{"etcd-node-2/etcd-server"})
	key := mustRead(t, picked[0].KeyPath())
	if _, err := Renew(context.Background(), pki.New(moved), picked, RenewOptions{ReuseKey: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, mustRead(t, picked[0].KeyPath())) {
		t.Error("--reuse-key replaced the key")
	}
	c := readCert(t, picked[0].CertPath())
	if !strings.Contains(strings.Join(certx.SANs(c), ","), "10.0.0.22") {
		t.Errorf("renewed SANs %v lack the new IP", certx.SANs(c))
	}
}

func TestListStatuses(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	now := time.Now()
	check := func(at time.Time, renewBefore time.Duration, want string) {
		t.Helper()
		infos, err := pki.List(pki.New(s), renewBefore, at)
		if err != nil {
			t.Fatal(err)
		}
		if infos[0].Name != "etcd-ca" || len(infos) != 12 {
			t.Fatalf("list: %d rows, first %q", len(infos), infos[0].Name)
		}
		for _, i := range infos[1:] {
			if i.Status != want {
				t.Errorf("at %v: %s is %s (%s), want %s", at, i.Name, i.Status, i.Reason, want)
			}
		}
	}
	check(now, 0, pki.StatusOK)
	check(now.Add(340*24*time.Hour), 0, pki.StatusDue)     // inside the 30d renew-before
	check(now.Add(250*24*time.Hour), 0, pki.StatusDue)     // past 2/3 of a year
	check(now, 87600*time.Hour, pki.StatusDue)             // --renew-before 87600h: everything now
	check(now.Add(400*24*time.Hour), 0, pki.StatusExpired) // past notAfter
	os.Remove(filepath.Join(pki.Paths{PKI: s.PKIDir}.NodeCertDir("etcd-node-1"), "..etcd-node-1.store", "..data"))
	infos, _ := pki.List(pki.New(s), 0, now)
	if infos[1].Status != pki.StatusMissing {
		t.Errorf("%s is %s, want missing", infos[1].Name, infos[1].Status)
	}
	if infos[1].ResidualSeconds != 0 || infos[4].ResidualSeconds < 364*24*3600 {
		t.Errorf("residual seconds %d %d", infos[1].ResidualSeconds, infos[4].ResidualSeconds)
	}
}

func TestOne(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	tg, err := One(context.Background(), pki.New(s), OneRequest{Kind: "server", Name: "etcd-gw", Hosts: []string{"10.0.0.21", "gw.example.internal"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := readCert(t, tg.CertPath())
	if c.Subject.CommonName != "etcd-gw" || !sameSet(certx.SANs(c), []string{"10.0.0.21", "gw.example.internal"}) {
		t.Errorf("issued %v %v", c.Subject, certx.SANs(c))
	}
	if filepath.Dir(tg.CertPath()) != filepath.Join(s.PKIDir, "issued", "etcd-gw") {
		t.Errorf("written to %s", tg.CertPath())
	}
	for _, bad := range []OneRequest{
		{Kind: "server", Name: "x"},
		{Kind: "client", Name: "x", Hosts: []string{"10.0.0.1"}},
		{Kind: "root", Name: "x"},
		{Kind: "client", Name: "../x"},
	} {
		_, err := One(context.Background(), pki.New(s), bad, Options{})
		checkInputError(t, err, "")
	}
}

// TestListNotesTwoCAsOutsideARotation: a bundle trusting a second CA
// that no CA rotation put there stays usable (the first CA is this PKI's)
// but certs list says so.
func TestListNotesTwoCAsOutsideARotation(t *testing.T) {
	s, _ := initTree(t, threeNodes)
	other, err := ca.Create(s.CA, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := pki.Paths{PKI: s.PKIDir}.NodeCertDir("etcd-node-2")
	cur, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := atomicdir.Update(atomicdir.Store{Dir: dir, Name: "etcd-node-2"}, []atomicdir.File{{Name: "ca.crt", Data: append(cur, other.CertPEM...), Mode: atomicdir.CertMode}}, nil); err != nil {
		t.Fatal(err)
	}
	infos, err := pki.List(pki.New(s), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		two := strings.HasPrefix(in.Name, "etcd-node-2/")
		if in.Status != pki.StatusOK || two != strings.Contains(in.Reason, "holds 2 CAs outside a CA rotation") {
			t.Errorf("%s: %s: %q", in.Name, in.Status, in.Reason)
		}
	}
}
