package main

import (
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/rotate"
	"github.com/etcdpki/etcdpki/runner"
)

func rotateCommand() *cli.Command {
	return &cli.Command{
		Name:      "rotate",
		ArgsUsage: "[TARGET... (with --kubeconfig)]",
		Usage:     "renew the certificates that are due, deploy them and prove them in effect (restarting members only when needed)",
		Description: `One run: plan what is due (inside renew-before, past 2/3 of its life, SANs changed, or
replaced from outside since the last run), renew it (previous pairs kept in PKI/backup/<time>/),
run each changed node's deploy command, then put it into effect. The whole cluster must be
healthy first.

--restart=auto (the default): etcd 3.2+ loads renewed certificates at its next TLS handshake, so
no member restarts for them. Instead, fresh handshakes prove each member in effect: its client and
peer ports serve the new serials, another member's peer port accepts its new peer certificate,
its new healthcheck certificate (and the apiserver's) answers a linearizable read on every client
port, and the cluster stays healthy under the same leader. A member is restarted only when what
etcd reads once at start changed (the ca.crt in its bundle, its etcd.conf.yml) or it runs etcd
older than 3.2. --restart=always restarts every member whose certificates changed: the choice
after a key compromise, since only a restart cuts connections authenticated with the old key.
--restart=never restarts nothing (and proves; add --no-verify to skip the proof for hosts this
machine cannot reach).

Restarts are rolled with their restart command: followers first, the leader last (it hands
leadership to the first member restarted, or, when it is the only member to restart, to another
member just before its own restart); after each one the member must serve the new serial on its
client and peer ports, answer a linearizable read and catch up with the leader before the next
one goes. The first failure stops the run.

Expired certificates. A cluster still serving on connections opened before its certificates
expired is rotated by the plain command: probes accept an expired server certificate from the etcd
CA (each one printed as a warning) and present a short-lived client certificate minted in memory
from the CA, so no client certificate on disk has to be valid; renewed leaves go into effect
without restarts as above, and the run ends proving every port serves an unexpired certificate.
A cluster that cannot form a quorum because its certificates (or its CA) expired needs --recover:
it renews every expired or invalid certificate (with a new CA, re-issuing everything, when the CA
expired), deploys to every node, restarts every member at once, waits for a quorum and full
health, then deploys to and restarts the clients. It refuses (exit 2) a cluster that has a quorum.

   etcdpki rotate --spec /etc/etcdpki/cluster.yaml --recover --dry-run

Safe from cron: a lock (PKI/rotate.lock) keeps runs apart and a journal (PKI/rotate-state.json)
makes a run killed at any point resume without proving or restarting finished members again.

   etcdpki rotate --spec /etc/etcdpki/cluster.yaml --dry-run
   etcdpki rotate --spec /etc/etcdpki/cluster.yaml --metrics-file /var/lib/node_exporter/etcdpki.prom
   etcdpki rotate --spec /etc/etcdpki/cluster.yaml --watch --interval 1h

Through the agents on Kubernetes (etcdpki agent on each host): --kubeconfig asks for a renewal
instead of doing one. It stamps the request (etcdpki.io/renew-requested-at and renew-targets) on the
EtcdCluster, as kubectl rollout restart does, and waits until its status shows every requested
certificate renewed since then and proven in effect, one line per certificate. Name TARGETs as
certs renew takes them (a certificate ID, a node or client, a kind) or --all. None of the flags
above applies then; the PKI directory is not read.

   etcdpki rotate --kubeconfig admin.conf --namespace etcd-system --cluster prod --all --timeout 15m

Exit codes: 0 done or nothing due, 1 a member, a proof or a check failed (or another run holds
the lock, or the cluster is down with expired certificates: the error names the --recover command),
2 usage or input error, or --recover on a cluster that has a quorum (nothing changed).
With --kubeconfig: 0 every requested certificate in effect, 1 --timeout passed (the error names
each one missing and what its status shows), 2 usage or input error, an unknown TARGET or no such
EtcdCluster (nothing stamped).`,
		Flags: append(append(specFlags(),
			&cli.StringFlag{Name: "renew-before", Usage: "renew certificates expiring within `DURATION` (overrides the spec; 87600h makes everything due)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan (certificates, each member's restart or proof, commands) and change nothing"},
			&cli.StringFlag{Name: "restart", Value: string(rotate.RestartAuto), Usage: "`MODE`: auto (restart only for a changed CA bundle or config, prove the rest), always (roll every changed member), or never"},
			&cli.BoolFlag{Name: "recover", Usage: "for a cluster down because its certificates or CA expired: renew, deploy everywhere, restart every member at once"},
			&cli.BoolFlag{Name: "no-verify", Usage: "with --restart=never, skip the proof that the new certificates are served"},
			&cli.StringFlag{Name: "metrics-file", Usage: "write a Prometheus textfile to `FILE` after each run"},
			&cli.DurationFlag{Name: "member-timeout", Value: runner.DefaultMemberTimeout, Usage: "how long a restarted member may take to serve its new certificate and catch up"},
			&cli.DurationFlag{Name: "hand-off-settle", Value: runner.DefaultHandOffSettle, Usage: "pause after moving leadership before the next member goes down (0s: none)"},
			&cli.DurationFlag{Name: "command-timeout", Value: runner.DefaultCommandTimeout, Usage: "bound on one deploy or restart command"},
			&cli.BoolFlag{Name: "watch", Usage: "keep running: rotate when due and whenever certificate files or the spec change"},
			&cli.DurationFlag{Name: "interval", Value: rotate.DefaultInterval, Usage: "with --watch, how often to check expiry"},
		), requestFlags()...),
		Action: runRotate,
	}
}

func runRotate(c *cli.Context) error {
	if c.IsSet("kubeconfig") {
		return runRequest(c)
	}
	if err := pkiOnly(c); err != nil {
		return err
	}
	if err := noArgs(c); err != nil {
		return err
	}
	// A signal lets the current restart or deploy finish (see stepsFinish).
	stepsFinish.Store(true)
	var renewBefore time.Duration
	if v := c.String("renew-before"); v != "" {
		d, err := cluster.ParseDuration(v)
		if err != nil {
			return input.Errorf("--renew-before: %v", err)
		}
		renewBefore = d
	}
	if c.IsSet("interval") && !c.Bool("watch") {
		return input.Errorf("--interval only applies with --watch")
	}
	if c.Bool("recover") && c.Bool("watch") {
		return input.Errorf("--recover is a one-off for a cluster that is down: it does not go with --watch")
	}
	if c.Bool("recover") && c.IsSet("restart") {
		return input.Errorf("--recover restarts every member at once: --restart does not apply to it")
	}
	for _, name := range []string{"interval", "member-timeout", "command-timeout"} {
		if c.Duration(name) <= 0 {
			return input.Errorf("--%s must be positive", name)
		}
	}
	if c.Duration("hand-off-settle") < 0 {
		return input.Errorf("--hand-off-settle must not be negative (0s: no pause)")
	}
	// The metrics file is replaced after the run: what is there now must
	// be a file etcdpki may replace, or the run would end in a warning
	// after changing the cluster.
	if f := c.String("metrics-file"); f != "" {
		if err := regular.Check(f, regular.MaxState); err != nil {
			return input.Errorf("--metrics-file %s: %v", f, pathx.UnwrapPath(err))
		}
	}
	inv, err := loadInventory(c, true)
	if err != nil {
		return err
	}
	if err := caKeyAgrees(inv); err != nil {
		return err
	}
	o := rotate.Options{
		RenewBefore:    renewBefore,
		DryRun:         c.Bool("dry-run"),
		Restart:        rotate.RestartMode(c.String("restart")),
		NoVerify:       c.Bool("no-verify"),
		Out:            c.App.Writer,
		Reporter:       runner.TextReporter(c.App.Writer),
		MetricsFile:    c.String("metrics-file"),
		MemberTimeout:  c.Duration("member-timeout"),
		HandOffSettle:  settle(c.Duration("hand-off-settle")),
		CommandTimeout: c.Duration("command-timeout"),
		Recover:        c.Bool("recover"),
		RecoverCommand: recoverCommand(c),
	}
	if c.Bool("watch") {
		// An edited spec is read again as it was read now: the same
		// flags, through the same helper.
		load := func() (*pki.Inventory, error) { return loadInventory(c, true) }
		return rotate.Watch(c.Context, inv, rotate.WatchOptions{Options: o, Interval: c.Duration("interval"), Load: load})
	}
	_, err = rotate.Run(c.Context, inv, o)
	return err
}

// settle maps the flag's 0 ("none") to the option's "none", which is
// negative because the option's zero value means the default.
func settle(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// recoverCommand is the command line that recovers this cluster, for the
// error that tells an operator to run it: this command's spec and PKI
// directory, as absolute paths, so it can be pasted anywhere.
func recoverCommand(c *cli.Context) string {
	cmd := "etcdpki rotate"
	spec := c.String("spec")
	if spec == "" && c.String("dir") == "" {
		if p, err := defaultSpecIfPresent(); err == nil {
			spec = p
		}
	}
	if spec != "" {
		cmd += " --spec " + shellQuote(pathx.Abs(spec))
	}
	if d := c.String("dir"); d != "" {
		cmd += " --dir " + shellQuote(pathx.Abs(d))
	}
	return cmd + " --recover"
}

// shellQuote quotes s for sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
