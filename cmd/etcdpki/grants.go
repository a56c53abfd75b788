package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// listRow is one row of certs list -o json: the certificate, and what
// the spec grants its common name in etcd.
type listRow struct {
	pki.CertInfo
	// Grants are the spec's grants to the certificate's CN, its etcd
	// user (etcdauth.Desired): empty when it gets no user, so etcd
	// refuses it as a client; absent for the CA's and the CRL's rows.
	Grants []string `json:"grants,omitzero"`
}

// access is what the spec gives one certificate in etcd.
type access struct {
	user   string   // "" when the CN gets no user
	grants []string // one per grant; nil with no user
	none   string   // why there is no user, for the table
}

// accessOf is the spec's access for each certificate of infos, by row;
// the CA's and the CRL's rows (no target) get none.
func accessOf(s *cluster.Spec, infos []pki.CertInfo) []*access {
	want := etcdauth.Desired(s)
	out := make([]*access, len(infos))
	for i, in := range infos {
		if in.Target == nil {
			continue
		}
		cn := in.Target.CommonName
		grants, root, exists := want.Effective(cn)
		a := &access{grants: []string{}}
		switch {
		case root:
			a.user, a.grants = cn, []string{"the root role: every key, and the cluster's administration"}
		case exists:
			a.user = cn
			for _, g := range grants {
				a.grants = append(a.grants, g.String())
			}
		case cn == ca.KindHealthcheck.CommonName:
			a.none = "none: no etcd user; etcdctl endpoint health and /health need none"
		default:
			a.none = "none: no etcd user, refused as a client"
		}
		out[i] = a
	}
	return out
}

// jsonRows are infos with their grants, for -o json.
func jsonRows(s *cluster.Spec, infos []pki.CertInfo) []listRow {
	acc := accessOf(s, infos)
	rows := make([]listRow, len(infos))
	for i := range infos {
		rows[i].CertInfo = infos[i]
		if acc[i] != nil {
			rows[i].Grants = acc[i].grants
		}
	}
	return rows
}

// writeGrants prints, after certs list's table, one line per grant the
// spec gives each certificate's CN in etcd, and whether they are in
// effect.
func writeGrants(w io.Writer, s *cluster.Spec, infos []pki.CertInfo) error {
	head := "etcd access from the spec (auth on): each certificate's common name is its etcd user"
	if !s.Auth.Enabled {
		head = "etcd access from the spec (auth off, so not in effect: every certificate above reads and writes every key, " +
			"every Kubernetes Secret included; auth.enabled: true and etcdpki auth apply give them these)"
	}
	fmt.Fprintf(w, "\n%s\n", head)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CERTIFICATE\tETCD USER\tGRANT")
	for i, a := range accessOf(s, infos) {
		switch {
		case a == nil:
		case a.user == "":
			fmt.Fprintf(tw, "%s\t-\t%s\n", infos[i].Name, a.none)
		default:
			for _, g := range a.grants {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", infos[i].Name, a.user, g)
			}
		}
	}
	return tw.Flush()
}
