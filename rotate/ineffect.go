package rotate

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
)

// provenInEffect says, for a run with nothing due, what shows that the
// certificates on disk are the ones in effect. Valid files prove nothing
// on their own (a deploy may never have reached a host, a member may run
// with other files), so "in effect" is claimed only for ports a fresh
// handshake just showed serving the serial on disk; anything else is
// named as not proven, with the reason. Client certificates cannot be
// seen from here: they are said to be valid on disk only.
func (r *leafRun) provenInEffect(ctx context.Context, p *Plan) string {
	switch {
	case r.o.NoVerify:
		return "not checked in effect (--no-verify)"
	case r.o.DryRun:
		return "not checked in effect (--dry-run)"
	}
	onDisk := map[string]string{} // target ID -> serial
	for _, info := range p.Certs {
		if info.Target != nil && info.Cert != nil {
			onDisk[info.Target.ID] = certx.Serial(info.Cert)
		}
	}
	cfg, err := r.Etcd.TLS()
	if err != nil {
		return fmt.Sprintf("not proven in effect: %v", err)
	}
	type port struct {
		addr, want, problem string
	}
	var ports []*port
	for _, n := range r.Inv.Spec.Nodes {
		for _, pp := range []struct {
			url  string
			kind string
		}{{n.ClientURLs[0], ca.KindServer.Name}, {n.PeerURLs[0], ca.KindPeer.Name}} {
			_, addr, err := probe.ParseEndpoint(pp.url)
			if err != nil {
				return fmt.Sprintf("not proven in effect: %v", err)
			}
			id := ""
			for _, t := range r.Inv.Targets {
				if t.Owner == n.Name && t.OwnerNode && t.Kind.Name == pp.kind {
					id = t.ID
				}
			}
			ports = append(ports, &port{addr: addr, want: onDisk[id]})
		}
	}
	var wg sync.WaitGroup
	for _, pt := range ports {
		wg.Go(func() {
			got, err := runner.ServingSerial(ctx, pt.addr, cfg)
			switch {
			case err != nil:
				pt.problem = err.Error() // it names the address
			case got != pt.want:
				pt.problem = fmt.Sprintf("%s serves serial %s, the file on disk has %s", pt.addr, pki.ShortSerial(got), pki.ShortSerial(pt.want))
			}
		})
	}
	wg.Wait()
	var problems []string
	for _, pt := range ports {
		if pt.problem != "" {
			problems = append(problems, pt.problem)
		}
	}
	if len(problems) > 0 {
		return "not proven in effect: " + strings.Join(problems, "; ")
	}
	return fmt.Sprintf("server and peer certificates in effect on every member (fresh handshakes on %d ports serve the serials on disk); client certificates valid on disk", len(ports))
}
