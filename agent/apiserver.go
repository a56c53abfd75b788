package agent

import (
	"strings"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
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
	t := a.Targets[0]
	a.init()
	a.HostLock.Lock()
	defer a.HostLock.Unlock()
	if err := issue.WriteAPIServerConfigs(r.o.Dir, strings.Split(servers, ","), a.Bundle.CAPath(), t.CertPath(), t.KeyPath()); err != nil {
		return err
	}
	r.log.Step(StepJoinConfig, r.o.Owner).Done("%s: etcd-flags in %s: --etcd-servers=%s", r.o.Owner, r.o.Dir, servers)
	return nil
}
