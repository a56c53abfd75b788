package agent

import (
	"fmt"
	"strings"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/issue"
)

// etcdServersFor writes the apiserver's etcd-flags and kubeadm
// etcd.external block in its bundle root with the --etcd-servers a
// restart grant names (v1alpha1.EtcdServersReason), before the restart
// runs: kube-apiserver reads them only at start, and its restart
// template deploys them, as member add's apiserver step does. Any other
// grant changes nothing here.
func (r *agentRun) etcdServersFor(a *Agent, g *v1alpha1.RestartGrant) error {
	servers, ok := strings.CutPrefix(g.Reason, v1alpha1.EtcdServersReason)
	if !ok || a.Bundle.Node || len(a.Targets) == 0 {
		return nil
	}
	eps, err := specServers(a.Spec, servers)
	if err != nil {
		return fmt.Errorf("restart grant for %s: %w; refusing to write its etcd-flags", r.o.Owner, err)
	}
	t := a.Targets[0]
	a.init()
	a.HostLock.Lock()
	defer a.HostLock.Unlock()
	if err := issue.WriteAPIServerConfigs(a.Spec, r.o.Dir, eps, a.Bundle.CAPath(), t.CertPath(), t.KeyPath()); err != nil {
		return err
	}
	r.log.Step(StepJoinConfig, r.o.Owner).Done("%s: etcd-flags in %s: --etcd-servers=%s", r.o.Owner, r.o.Dir, servers)
	return nil
}

// specServers splits a grant's servers and checks each is the first
// client URL of a node in the spec, none twice: the status is written by
// more identities than the spec, and these become kube-apiserver's
// --etcd-servers (a line of its etcd-flags).
func specServers(s *cluster.Spec, servers string) ([]string, error) {
	known := map[string]bool{}
	for _, ep := range s.ClientEndpoints() {
		known[ep] = true
	}
	eps := strings.Split(servers, ",")
	seen := map[string]bool{}
	for _, ep := range eps {
		switch {
		case !known[ep]:
			return nil, fmt.Errorf("etcd-servers %q is not the client URL of a node in the spec", ep)
		case seen[ep]:
			return nil, fmt.Errorf("etcd-servers names %s twice", ep)
		}
		seen[ep] = true
	}
	return eps, nil
}
