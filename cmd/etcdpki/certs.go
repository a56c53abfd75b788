package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/verify"
)

func certsCommand() *cli.Command {
	var kinds []string
	for _, k := range ca.Catalogue() {
		kinds = append(kinds, fmt.Sprintf("   %-24s %s", k.Name, k.LongName))
	}
	return &cli.Command{
		Name:  "certs",
		Usage: "list certificates and their expiry, or renew them",
		// Without an action, urfave/cli answers an unknown subcommand with
		// its help and exit code 3; it is a usage error.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return input.Errorf("unknown command \"certs %s\" (see etcdpki certs --help)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "show every certificate of the spec: subject, SANs, expiry, residual time, CA, status, and its etcd grants",
				Description: "When a certificate has expired, the cluster is probed (each member within 2s, with a client\n" +
					"certificate minted in memory from the CA) and the status says what to do: \"" + verify.StateServing + "\"\n" +
					"when a quorum still answers, \"" + verify.StateDown + "\" when none does.\n\n" +
					"Below the table, what the spec grants each certificate's common name, its etcd user, one line\n" +
					"per grant (in effect once auth is on: auth.enabled in the spec, then etcdpki auth apply);\n" +
					"-o json gives them as each row's \"grants\" (empty: no etcd user).",
				Flags: append(specFlags(),
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"},
				),
				Action: certsList,
			},
			{
				Name:      "renew",
				Usage:     "re-issue certificates from the spec (picks up SAN changes); new key by default",
				ArgsUsage: "[NAME...]",
				Description: "NAME is a certificate (etcd-node-1/etcd-server), a node or client name (all of its\n" +
					"certificates) or a catalogue kind (that kind on every node). Kinds:\n" + strings.Join(kinds, "\n") +
					"\n\nThe previous pairs are kept in PKI/backup/<time>/. Members pick up new leaves at\n" +
					"their next TLS handshake; `etcdpki rotate` also rolls them so the change is proven.",
				Flags: append(specFlags(),
					&cli.BoolFlag{Name: "all", Usage: "renew every certificate"},
					&cli.BoolFlag{Name: "reuse-key", Usage: "sign the existing key again instead of a new one"},
				),
				Action: certsRenew,
			},
			certsRevokeCommand(),
		},
	}
}

func certsList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	inv, err := loadInventory(c, true)
	if err != nil {
		return err
	}
	if err := warnCAKey(inv, c.App.ErrWriter); err != nil {
		return err
	}
	infos, err := pki.List(inv, 0, time.Now())
	if err != nil {
		return err
	}
	// The CRL's rows, and an error (exit 1, after the listing) when a
	// bundle's config names a CRL its member could not read.
	infos, crlErr := pki.WithCRL(inv, infos, time.Now())
	// An expired certificate is named with the cluster's state and the
	// command that fixes it, which takes a probe of the cluster: made only
	// then, bounded by listProbeTimeout.
	if st := verify.ExpiredState(c.Context, inv, infos, listProbeTimeout); st != nil {
		for i := range infos {
			if infos[i].Status == pki.StatusExpired {
				infos[i].Reason = st.State
			}
		}
	}
	pendingNotes(inv.Spec.PKIDir, infos)
	switch c.String("output") {
	case "json":
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(jsonRows(inv.Spec, infos)); err != nil {
			return err
		}
		return crlErr
	case "table":
	default:
		return input.Errorf("--output %q: use table or json", c.String("output"))
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CERTIFICATE\tSUBJECT\tSANS\tEXPIRES\tRESIDUAL TIME\tCA\tSTATUS")
	for _, i := range infos {
		exp := "-"
		if !i.Expires.IsZero() {
			exp = i.Expires.UTC().Format("Jan 02, 2006 15:04 UTC")
		}
		sans := strings.Join(i.SANs, ",")
		if sans == "" {
			sans = "-"
		}
		status := i.Status
		switch {
		case strings.HasPrefix(i.Reason, i.Status):
			status = i.Reason // "expired, cluster still serving..."
		case i.Reason != "":
			// An ok row's reason is a note: the stage of a CA rotation,
			// or a bundle holding two CAs outside one.
			status += ": " + i.Reason
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, orDash(i.Subject), sans, exp, orDash(i.Residual), i.CA, status)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	// Where the CA key is: a file on this host, or a token object.
	for _, i := range infos {
		if i.Key != "" {
			fmt.Fprintf(c.App.Writer, "\n%s key: %s\n", i.Name, i.Key)
		}
	}
	if err := writeGrants(c.App.Writer, inv.Spec, infos); err != nil {
		return err
	}
	return crlErr
}

// pendingNotes adds to the rows what an unfinished command left, with the
// command that finishes it: a membership change (a stray learner) on the
// rows of its node, a revoke on the CRL's row (until it is finished its
// serials may not be refused everywhere).
func pendingNotes(pkiDir string, infos []pki.CertInfo) {
	name, note := member.Pending(pkiDir)
	j := runner.PendingRevoke(pkiDir)
	for i := range infos {
		if name != "" && infos[i].Target != nil && infos[i].Target.Owner == name {
			infos[i].Reason = strings.TrimPrefix(infos[i].Reason+"; "+note, "; ")
		}
		if j != nil && infos[i].Name == pki.CRLRow {
			infos[i].Reason = strings.TrimPrefix(infos[i].Reason+"; "+j.Note(), "; ")
		}
	}
}

// listProbeTimeout bounds certs list's probe of each member when a
// certificate has expired: a listing must stay quick when the cluster is
// down, and a member that answers at all answers a read well within it.
const listProbeTimeout = 2 * time.Second

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func certsRenew(c *cli.Context) error {
	if err := checkArgs(c); err != nil {
		return err
	}
	if err := checkTargets("certs renew:", c.Args().Slice()); err != nil {
		return err
	}
	inv, err := loadInventory(c, true)
	if err != nil {
		return err
	}
	if err := caKeyAgrees(inv); err != nil {
		return err
	}
	all := inv.Targets
	var picked []pki.Target
	switch {
	case c.Bool("all") && c.Args().Len() > 0:
		return input.Errorf("certs renew: give NAMEs or --all, not both")
	case c.Bool("all"):
		picked = all
	case c.Args().Len() == 0:
		return input.Errorf("certs renew: name the certificates to renew, or --all")
	default:
		var missing []string
		picked, missing = pki.Select(all, c.Args().Slice())
		if len(missing) > 0 {
			return input.Errorf("certs renew: unknown certificate %q (see etcdpki certs list)", missing[0])
		}
	}
	// Renew takes the PKI directory's lock: a rotation in progress must
	// not see its files change under it (it records the serials it
	// verified, and would roll these next).
	_, err = issue.Renew(c.Context, inv, picked, issue.RenewOptions{Options: issue.Options{Out: c.App.Writer}, ReuseKey: c.Bool("reuse-key")})
	return err
}
