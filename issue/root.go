package issue

import (
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
)

// KindRoot is OneRequest's kind for the break-glass root client: a
// client certificate whose CN is etcd's superuser (cluster.RootUser),
// written into the PKI directory only (pki.Paths.RootDir, key 0600),
// never into a bundle or under --out. etcdpki's own admin calls never
// need it: they mint a root client in memory for each run. It is for an
// operator with etcdctl when etcdpki itself cannot run.
const KindRoot = "root"

// checkRootRequest checks a root request: nothing but the kind. Its
// name is cluster.RootUser, it has no SANs or organizations, and it goes
// nowhere but the PKI directory.
func checkRootRequest(r *OneRequest) error {
	switch {
	case r.Name != "" && r.Name != cluster.RootUser:
		return input.Errorf("issue root takes no NAME (got %q): the certificate's CN is etcd's superuser %q", r.Name, cluster.RootUser)
	case len(r.Hosts) > 0:
		return input.Errorf("a root client certificate carries no SANs; drop --ip/--dns")
	case len(r.Organization) > 0:
		return input.Errorf("a root client certificate carries no organization; drop --org")
	case r.Out != "":
		return input.Errorf("--out: the root client certificate stays in the PKI directory (PKI/root), never in a bundle")
	}
	r.Name = cluster.RootUser
	return nil
}
