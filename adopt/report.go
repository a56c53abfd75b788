package adopt

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/pki"
)

// printReport writes the report: the CA, each port as served, what is imported,
// held and missing, then the mismatches.
func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "[ca] %s (%s), serial %s, expires %s\n", r.CA.Subject.CommonName, certx.KeyDescription(r.CA.PublicKey),
		pki.ShortSerial(certx.Serial(r.CA)), r.CA.NotAfter.UTC().Format(time.DateOnly))
	for _, p := range r.Ports {
		switch {
		case p.Err != nil:
			fmt.Fprintf(w, "[wire] %s: not seen\n", p.Name())
		default:
			verdict := "matches the spec"
			if len(p.Problems) > 0 {
				verdict = fmt.Sprintf("%d mismatches", len(p.Problems))
			}
			fmt.Fprintf(w, "[wire] %s: serial %s, expires %s, SANs %s: %s\n", p.Name(), pki.ShortSerial(certx.Serial(p.Cert)),
				p.Cert.NotAfter.UTC().Format(time.DateOnly), strings.Join(certx.SANs(p.Cert), ","), verdict)
		}
	}
	for _, id := range keys(r.Imported) {
		fmt.Fprintf(w, "[import] %s from %s\n", id, r.Imported[id])
	}
	var held []string
	for id := range r.Held {
		held = append(held, id)
	}
	sort.Strings(held)
	for _, id := range held {
		fmt.Fprintf(w, "[held] %s: held on the host, expires %s (serial %s)\n", id, r.Held[id].NotAfter.UTC().Format(time.DateOnly), pki.ShortSerial(certx.Serial(r.Held[id])))
	}
	for _, id := range r.Missing {
		fmt.Fprintf(w, "[missing] %s: neither seen on the wire nor found in a --node-dir/--client-dir; the next rotate issues it\n", id)
	}
	for _, m := range r.Mismatches {
		fmt.Fprintf(w, "[mismatch] %s\n", m)
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
