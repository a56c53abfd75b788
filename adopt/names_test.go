package adopt_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/adopt"
	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/kubeadmcerts"
	"github.com/etcdpki/etcdpki/pki"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	kubeadmcerts.Write(t, to, b)
}

// TestAdoptImportsCfsslAndKubesprayNames imports node 1's pairs from a
// directory with the cfssl recipe's names (server.pem, server-key.pem,
// peer.pem...), node 2's from kubespray's (member-NODE.pem serving both
// ports, admin-NODE.pem) and the apiserver's kubespray node-NAME.pem: each
// lands in its bundle with the serial its member serves.
func TestAdoptImportsCfsslAndKubesprayNames(t *testing.T) {
	c := kubeadmcerts.Start(t, kubeadmcerts.Options{Write: func(a *kubeadmcerts.CA, i int, pkiDir, node string, ip net.IP) {
		if i != 2 {
			a.WriteNode(t, pkiDir, node, ip)
			return
		}
		// kubespray: one member certificate for both ports.
		a.WriteNode(t, pkiDir, node, ip)
		d := filepath.Join(pkiDir, "etcd")
		copyFile(t, filepath.Join(d, "server.crt"), filepath.Join(d, "peer.crt"))
		copyFile(t, filepath.Join(d, "server.key"), filepath.Join(d, "peer.key"))
	}})
	copies := t.TempDir()
	cfssl, spray, cp := filepath.Join(copies, "cfssl"), filepath.Join(copies, "kubespray"), filepath.Join(copies, "cp")
	n1, n2 := filepath.Join(c.NodePKI(1), "etcd"), filepath.Join(c.NodePKI(2), "etcd")
	for from, to := range map[string]string{
		filepath.Join(n1, "ca.crt"): filepath.Join(cfssl, "ca.pem"), filepath.Join(n1, "ca.key"): filepath.Join(cfssl, "ca-key.pem"),
		filepath.Join(n1, "server.crt"): filepath.Join(cfssl, "server.pem"), filepath.Join(n1, "server.key"): filepath.Join(cfssl, "server-key.pem"),
		filepath.Join(n1, "peer.crt"): filepath.Join(cfssl, "peer.pem"), filepath.Join(n1, "peer.key"): filepath.Join(cfssl, "peer-key.pem"),
		filepath.Join(n2, "server.crt"): filepath.Join(spray, "member-etcd-2.pem"), filepath.Join(n2, "server.key"): filepath.Join(spray, "member-etcd-2-key.pem"),
		filepath.Join(n2, "healthcheck-client.crt"): filepath.Join(spray, "admin-etcd-2.pem"), filepath.Join(n2, "healthcheck-client.key"): filepath.Join(spray, "admin-etcd-2-key.pem"),
		filepath.Join(c.APIServerPKI, "apiserver-etcd-client.crt"): filepath.Join(cp, "node-cp-1.pem"),
		filepath.Join(c.APIServerPKI, "apiserver-etcd-client.key"): filepath.Join(cp, "node-cp-1-key.pem"),
	} {
		copyFile(t, from, to)
	}
	served := wire(t, c.Spec, c.APIServerTLS())
	var out bytes.Buffer
	rep, err := adopt.Run(context.Background(), pki.New(c.Spec), adopt.Options{
		CACert: filepath.Join(cfssl, "ca.pem"), CAKey: filepath.Join(cfssl, "ca-key.pem"),
		NodeDirs:   map[string]string{"etcd-1": cfssl, "etcd-2": spray},
		ClientDirs: map[string]string{cluster.ClientAPIServer: cp},
		Out:        &out,
	})
	t.Logf("adopt:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"etcd-1/etcd-server": filepath.Join(cfssl, "server.pem"), "etcd-1/etcd-peer": filepath.Join(cfssl, "peer.pem"),
		"etcd-2/etcd-server": filepath.Join(spray, "member-etcd-2.pem"), "etcd-2/etcd-peer": filepath.Join(spray, "member-etcd-2.pem"),
		"etcd-2/etcd-healthcheck-client": filepath.Join(spray, "admin-etcd-2.pem"),
		"apiserver-etcd-client":          filepath.Join(cp, "node-cp-1.pem"),
	}
	if !mapsEqual(rep.Imported, want) {
		t.Errorf("imported %v, want %v", rep.Imported, want)
	}
	inv := pki.New(c.Spec)
	for id, src := range want {
		tg, _ := inv.Target(id)
		if got, want := fileSerial(t, tg.CertPath()), fileSerial(t, src); got != want {
			t.Errorf("%s: bundle serial %s, source %s", id, got, want)
		}
		if s, ok := served[id]; ok && s != fileSerial(t, tg.CertPath()) {
			t.Errorf("%s: bundle serial %s, served %s", id, fileSerial(t, tg.CertPath()), s)
		}
	}
}

// TestAdoptRefusesAMemberWithoutItsIPSAN runs etcd-2 on a server
// certificate without its IP (etcd itself does not mind; every client
// dialling 127.0.0.2 does). adopt names the member, the port and the SAN,
// exits 1 and writes nothing, in a dry run too; with --accept-mismatch it
// writes, and the certificate is listed as held with the SAN the spec
// wants, so the next rotate renews it.
func TestAdoptRefusesAMemberWithoutItsIPSAN(t *testing.T) {
	c := kubeadmcerts.Start(t, kubeadmcerts.Options{NoHostCheck: true, Write: func(a *kubeadmcerts.CA, i int, pkiDir, node string, ip net.IP) {
		server := kubeadmcerts.Server(node, ip)
		if i == 2 {
			server.IPs = server.IPs[1:]
		}
		a.WriteNodeWith(t, pkiDir, server, kubeadmcerts.Server(node, ip))
	}})
	o := adopt.Options{CACert: filepath.Join(c.NodePKI(1), "etcd", "ca.crt"), CAKey: filepath.Join(c.NodePKI(1), "etcd", "ca.key")}
	for _, dry := range []bool{false, true} {
		var out bytes.Buffer
		o.Out, o.DryRun = &out, dry
		_, err := adopt.Run(context.Background(), pki.New(c.Spec), o)
		t.Logf("adopt (dry run %v): %v\n%s", dry, err, out.String())
		var me *adopt.MismatchError
		if !errors.As(err, &me) || len(me.Mismatches) != 1 {
			t.Fatalf("dry run %v: got %v, want one mismatch", dry, err)
		}
		if m := me.Mismatches[0]; !strings.Contains(m, "etcd-2 client port 127.0.0.2:") || !strings.Contains(m, "lacks SAN 127.0.0.2") {
			t.Errorf("mismatch %q does not name etcd-2's client port and the missing SAN", m)
		}
		if _, err := os.Stat(c.Spec.PKIDir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("dry run %v: %s written despite the mismatch", dry, c.Spec.PKIDir)
		}
	}
	var out bytes.Buffer
	o.Out, o.DryRun, o.AcceptMismatch = &out, false, true
	if _, err := adopt.Run(context.Background(), pki.New(c.Spec), o); err != nil {
		t.Fatalf("--accept-mismatch: %v\n%s", err, out.String())
	}
	tg, _ := pki.New(c.Spec).Target("etcd-2/etcd-server")
	info, ok := pki.InspectHeld(tg, mustCA(t, c.Spec), c.Spec.Leaf.RenewBefore, time.Now())
	if !ok || info.Status != pki.StatusSANMismatch || !strings.Contains(info.Reason, "127.0.0.2") {
		t.Errorf("etcd-2/etcd-server after --accept-mismatch: %+v; want held with the SAN mismatch", info)
	}
}

func mustCA(t *testing.T, s *cluster.Spec) *ca.CA {
	t.Helper()
	a, err := pki.LoadCA(pki.Paths{PKI: s.PKIDir})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
