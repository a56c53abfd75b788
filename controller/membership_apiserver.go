package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/etcdpki/etcdpki/api/v1alpha1"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// apiServerFollows has kube-apiserver's --etcd-servers follow the spec's
// voting members, as member add (last) and member remove (first) update
// it: kube-apiserver reads the flag only at start, so a restart of the
// kube-apiserver client is granted (restart.go) with the servers in its
// reason; that client's agent writes its etcd-flags from them, runs its
// restart template and reports it done; then the servers are recorded in
// status.apiServerEtcdServers. The first servers seen with no change
// under way are recorded as they are (the apiserver was set up with
// them). It says whether the apiserver names the servers now; a spec
// without a restart template for kube-apiserver leaves it to the
// operator, as the CLI does.
func (r *clusterReconciler) apiServerFollows(ctx context.Context, cl *v1alpha1.EtcdCluster, inv *pki.Inventory, v memberView, idle bool, cfg *tls.Config, out *membership) bool {
	c, ok := inv.Spec.Client(cluster.ClientAPIServer)
	want := strings.Join(v.servers(inv.Spec), ",")
	have := cl.Status.APIServerEtcdServers
	switch {
	case !ok || c.Restart == "" || have == want:
		return true
	case have == "" && idle:
		return r.recordServers(ctx, cl, want, out)
	}
	out.busy = true
	reason := v1alpha1.EtcdServersReason + want
	voters := inv.Without(v.notVoting...).Spec
	g, err := grantRestart(ctx, r.c, r.reader, client.ObjectKeyFromObject(cl), voters, cfg, cluster.ClientAPIServer, reason)
	switch {
	case err != nil:
		out.reason, out.message = ReasonMembership, err.Error()
		return false
	case g.Granted:
		r.memberEvent(cl, EventAPIServer, fmt.Sprintf("restart of %s granted: --etcd-servers=%s (was %s)", cluster.ClientAPIServer, want, have))
		return false
	case !g.Done:
		return false
	}
	if !r.recordServers(ctx, cl, want, out) {
		return false
	}
	if err := clearRestart(ctx, r.c, client.ObjectKeyFromObject(cl), cluster.ClientAPIServer, reason); err != nil {
		out.reason, out.message = ReasonMembership, err.Error()
		return false
	}
	r.memberEvent(cl, EventAPIServer, fmt.Sprintf("%s restarted with --etcd-servers=%s", cluster.ClientAPIServer, want))
	return true
}

func (r *clusterReconciler) recordServers(ctx context.Context, cl *v1alpha1.EtcdCluster, servers string, out *membership) bool {
	err := r.updateStatus(ctx, cl, func(st *v1alpha1.EtcdClusterStatus) { st.APIServerEtcdServers = servers })
	if err != nil {
		out.reason, out.message = ReasonMembership, err.Error()
		return false
	}
	return true
}
