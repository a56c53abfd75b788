package verify

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// CheckColocated is the row for a host directory that receives a node's
// bundle and a client's (kube-apiserver on an etcd member's host, both in
// /etc/kubernetes/pki): the co-located case.
const CheckColocated = "co-located-files"

// colocatedChecks checks, for every node whose dir is also a client's and
// whose IP belongs to this machine (verify runs on that host, so the
// files are local), that every file both bundles put in that directory
// resolves, that each pair matches, and that each holds the bytes the PKI
// holds (the last deploy arrived). Directories on other hosts get no row:
// their files cannot be read from here.
func colocatedChecks(inv *pki.Inventory) []Check {
	s := inv.Spec
	var checks []Check
	for _, n := range s.Nodes {
		if !onThisMachine(n.IPs) {
			continue
		}
		nb, ok := inv.Bundle(n.Name)
		if !ok {
			continue
		}
		for _, c := range s.Clients {
			cb, ok := inv.Bundle(c.Name)
			if !ok || c.Dir != n.Dir {
				continue
			}
			st, reason := checkSharedDir(inv, n.Dir, nb, cb)
			checks = append(checks, Check{Name: CheckColocated, Target: n.Dir, Status: st,
				Reason: fmt.Sprintf("node %s and client %s: %s", n.Name, c.Name, reason)})
		}
	}
	return checks
}

// onThisMachine reports whether one of ips is an address of this
// machine: only then can it be bound.
func onThisMachine(ips []net.IP) bool {
	for _, ip := range ips {
		if l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0")); err == nil {
			l.Close()
			return true
		}
	}
	return false
}

// checkSharedDir checks both bundles' files as they are in dir. The CA
// file both carry (etcd/ca.crt) shows whichever bundle was copied last,
// so it may hold either bundle's bytes.
func checkSharedDir(inv *pki.Inventory, dir string, bundles ...pki.Bundle) (Status, string) {
	var cas [][]byte
	for _, b := range bundles {
		data, err := regular.ReadFile(b.CAPath(), regular.MaxPEM)
		if err != nil {
			return Fail, fmt.Sprintf("cannot read %s in the PKI: %v", b.CAPath(), err)
		}
		cas = append(cas, data)
	}
	files, stale := 0, ""
	for _, b := range bundles {
		onHost := b.OnHost(dir, b.CAPath())
		got, err := regular.ReadFile(onHost, regular.MaxPEM)
		if err != nil {
			return Fail, fmt.Sprintf("%s does not resolve: %v", onHost, err)
		}
		files++
		if !bytes.Equal(got, cas[0]) && !bytes.Equal(got, cas[len(cas)-1]) {
			stale = onHost
		}
		for _, id := range b.Targets {
			t, _ := inv.Target(id)
			crt, key := b.OnHost(dir, t.CertPath()), b.OnHost(dir, t.KeyPath())
			// One version of the store, as every reader of a pair reads.
			data, errs := atomicdir.ReadTogether(crt, key)
			if errs[0] != nil {
				return Fail, fmt.Sprintf("%s does not resolve: %v", crt, errs[0])
			}
			if errs[1] != nil {
				return Fail, fmt.Sprintf("%s does not resolve: %v", key, errs[1])
			}
			crtPEM, keyPEM := data[0], data[1]
			files += 2
			if err := pairMatches(crtPEM, keyPEM); err != nil {
				return Fail, fmt.Sprintf("%s and %s: %v", crt, filepath.Base(key), err)
			}
			want, err := regular.ReadFile(t.CertPath(), regular.MaxPEM)
			if err == nil && !bytes.Equal(want, crtPEM) {
				stale = crt
			}
		}
	}
	if stale != "" {
		return Warn, fmt.Sprintf("%d files resolve and pairs match, but %s is not what the PKI holds: deploy again", files, stale)
	}
	return OK, fmt.Sprintf("%d files resolve, pairs match, as in the PKI", files)
}

func pairMatches(crtPEM, keyPEM []byte) error {
	certs, err := certx.ParseCertificates(crtPEM)
	if err != nil {
		return err
	}
	key, err := certx.ParseKey(keyPEM)
	if err != nil {
		return err
	}
	if !certx.KeyMatches(certs[0], key.Public()) {
		return fmt.Errorf("the key does not belong to the certificate")
	}
	return nil
}
