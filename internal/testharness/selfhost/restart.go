package selfhost

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/pki"
)

// Window is one restart as the harness's control script saw it: from
// the moment the restart command asked for it to the moment the process
// listened again.
type Window struct {
	Host       string
	Start, End time.Time
}

// Windows records the restarts made through the control script.
type Windows struct {
	mu   sync.Mutex
	list []Window
}

func (w *Windows) add(host string, start, end time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, Window{Host: host, Start: start, End: end})
}

// List is every restart so far, in the order they ended.
func (w *Windows) List() []Window {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Window(nil), w.list...)
}

// Contains says whether a failure that started at at and took took
// overlaps a window widened by before and after.
func (w *Windows) Contains(at time.Time, took, before, after time.Duration) bool {
	for _, x := range w.List() {
		if at.Before(x.End.Add(after)) && at.Add(took).After(x.Start.Add(-before)) {
			return true
		}
	}
	return false
}

// RecordRestarts makes the apiserver restartable by the control script
// (`CTL restart kube-apiserver`: the template every node's restart is,
// rendered for the kube-apiserver client) and records every restart made
// through the script, a member's or the apiserver's, in the returned
// Windows: a spec whose kube-apiserver client has the nodes' restart
// template lets etcdpki's agents restart it as on a real host.
func (e *Env) RecordRestarts() *Windows {
	w := &Windows{}
	e.Etcd.HandleControl(cluster.ClientAPIServer, func(verb string) error {
		if verb != "restart" {
			return fmt.Errorf("kube-apiserver: only restart is handled, not %q", verb)
		}
		return e.Kube.RestartAPIServer()
	})
	e.Etcd.ObserveControl(func(name, verb string, start, end time.Time) {
		if verb == "restart" {
			w.add(name, start, end)
		}
	})
	return w
}

// RestartableAPIServer is an Options.Edit that gives the spec's
// kube-apiserver client the nodes' restart template (the control
// script), for RecordRestarts.
func RestartableAPIServer(f *etcdtest.SpecFile) {
	f.Clients = append(f.Clients, cluster.FileClient{Name: cluster.ClientAPIServer, Restart: f.Nodes[0].Restart})
}

// StartEtcdLoadFollowingTrust is StartEtcdLoad for a CA rotation: the
// load's client verifies the members against the apiserver bundle's
// ca.crt as it is at each handshake, as the apiserver does once it is
// restarted with it. (StartEtcdLoad's client trusts the CA it started
// with, as an apiserver never restarted would, and fails once the
// members serve leaves of the new CA.)
func (e *Env) StartEtcdLoadFollowingTrust(t testing.TB) *EtcdLoad {
	t.Helper()
	b, _ := e.Inventory.Bundle(cluster.ClientAPIServer)
	cfg := e.Etcd.APIServerTLS().Clone()
	cfg.InsecureSkipVerify = true // verified below, against the file as it is now
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		cas, err := pki.ReadCAs(b.CAPath())
		if err != nil {
			return err
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no server certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: probe.CertPool(cas), Intermediates: inter, DNSName: cs.ServerName})
		return err
	}
	return StartEtcdLoad(t, e.Etcd.Endpoints(), cfg)
}

// RestartTemplates is RecordRestarts that also returns the restart
// template of the members and the apiserver (the control script with
// {{.Name}}), for a test that writes it into the spec itself.
func (e *Env) RestartTemplates() (string, *Windows) {
	return e.Etcd.ControlCommand("restart"), e.RecordRestarts()
}
