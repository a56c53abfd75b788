#!/usr/bin/env bash
# A local 3-member TLS etcd cluster from etcdpki's own output (make demo).
#
#   examples/demo.sh start            init a fresh PKI in demo/, start etcd-1..3, show it
#   examples/demo.sh stop             stop exactly the members this script started
#   examples/demo.sh restart NODE     stop and start one member (the spec's restart template)
#   examples/demo.sh status           show which members run
#
# Run from anywhere; paths are relative to the repository root. The
# binaries come from $ETCDPKI_BIN, $ETCD_BIN and $ETCDCTL_BIN (the Makefile
# sets them), else from ./bin.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
spec=examples/local.yaml
demo=demo
pki=$demo/pki
etcdpki="${ETCDPKI_BIN:-$root/bin/etcdpki}"
etcd="${ETCD_BIN:-$root/bin/etcd}"
etcdctl="${ETCDCTL_BIN:-$root/bin/etcdctl}"

# etcd and etcdctl read ETCD_* / ETCDCTL_* variables as flags; the ones the
# Makefile exports name binaries, not settings, so keep them away.
clean_env=(env -u ETCD_BIN -u ETCDCTL_BIN -u ETCDPKI_BIN)

die() { echo "demo: $*" >&2; exit 1; }

nodes() {
	local cfg
	for cfg in "$pki"/nodes/*/etcd.env; do
		[ -e "$cfg" ] && basename "$(dirname "$cfg")"
	done
}

# ours PID NODE: the process is alive and is the etcd this demo started for
# NODE, not whatever reused the pid since.
ours() {
	local cmd
	cmd="$(ps -o args= -p "$1" 2>/dev/null)" || return 1
	[[ "$cmd" == *etcd* ]] || return 1
	# Members run from etcd.env (ETCD_* variables, no flags): the one way
	# etcd reads a CRL, which member remove's revocation needs. The
	# process's environment says which member it is.
	{ tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qx "ETCD_NAME=$2"
}

start_member() {
	local n=$1 cfg="$root/$pki/nodes/$1/etcd.env"
	[ -f "$cfg" ] || die "no config for member $n ($cfg)"
	# setsid: the member leaves the terminal's session, so closing the
	# terminal or ^C in it does not stop the cluster. The inner shell writes
	# its own pid, which exec hands to etcd, so the pid file is exact
	# whether or not setsid had to fork.
	local detach=()
	# setsid is util-linux; where it is missing the member stays in this session.
	command -v setsid >/dev/null && detach=(setsid)
	${detach[@]+"${detach[@]}"} "${clean_env[@]}" bash -c 'echo $$ >"$1"; set -a; . "$3"; set +a; exec "$2"' \
		_ "$demo/$n.pid" "$etcd" "$cfg" >>"$demo/$n.log" 2>&1 </dev/null &
	local i
	for i in $(seq 50); do
		[ -s "$demo/$n.pid" ] && break
		sleep 0.1
	done
	[ -s "$demo/$n.pid" ] || die "member $n did not start; see $demo/$n.log"
	echo "started $n (pid $(cat "$demo/$n.pid"), log $demo/$n.log)"
}

stop_member() {
	local n=$1 f="$demo/$1.pid" pid i
	[ -f "$f" ] || return 0
	pid="$(cat "$f")"
	if ! ours "$pid" "$n"; then
		echo "$n: pid $pid is not running (or is not the demo's etcd); nothing to stop"
		rm -f "$f"
		return 0
	fi
	kill -TERM "$pid"
	for i in $(seq 100); do
		ours "$pid" "$n" || break
		sleep 0.1
	done
	if ours "$pid" "$n"; then
		echo "$n: still running 10s after SIGTERM; sending SIGKILL"
		kill -KILL "$pid"
	fi
	rm -f "$f"
	echo "stopped $n (pid $pid)"
}

running() {
	local f n
	for f in "$demo"/*.pid; do
		[ -e "$f" ] || continue
		n="$(basename "$f" .pid)"
		if ours "$(cat "$f")" "$n"; then echo "$n"; fi
	done
}

ctl() {
	local crt="$pki/apiserver/apiserver-etcd-client.crt" key="$pki/apiserver/apiserver-etcd-client.key"
	"${clean_env[@]}" "$etcdctl" --endpoints="$endpoints" --cacert="$pki/apiserver/etcd/ca.crt" \
		--cert="$crt" --key="$key" --dial-timeout=2s --command-timeout=5s "$@"
}

cmd_start() {
	local n
	for b in "$etcdpki" "$etcd" "$etcdctl"; do
		[ -x "$b" ] || die "$b is missing: run \`make demo\` (it builds etcdpki and etcd)"
	done
	if [ -n "$(running)" ]; then
		die "the demo is already running ($(echo $(running))); stop it first: make demo-stop"
	fi
	# A fresh PKI and fresh data every time: the demo shows a bootstrap.
	rm -rf "$demo"
	mkdir -p "$demo"

	# The spec with a fourth member on 127.0.0.4, for member add.
	cat "$spec" - >"$demo/with-etcd-4.yaml" <<'YAML'
  - name: etcd-4
    ips: [127.0.0.4]
    clientPort: 12379
    peerPort: 12380
    restart: examples/demo.sh restart {{.Name}}
YAML
	echo "== etcdpki init --spec $spec --dir $pki"
	"$etcdpki" init --spec "$spec" --dir "$pki"
	echo
	echo "== starting the members from the generated configs"
	for n in $(nodes); do start_member "$n"; done
	endpoints="$(grep -- '--etcd-servers=' "$pki/apiserver/etcd-flags" | cut -d= -f2-)"

	echo
	echo "== waiting for every member to be healthy (kube-apiserver's client cert)"
	local i ok=
	for i in $(seq 60); do
		if ctl endpoint health >/dev/null 2>&1; then ok=1; break; fi
		for n in $(nodes); do
			ours "$(cat "$demo/$n.pid" 2>/dev/null || echo 0)" "$n" ||
				{ tail -n 20 "$demo/$n.log" >&2; cmd_stop; die "member $n exited; its log is $demo/$n.log"; }
		done
		sleep 1
	done
	[ -n "$ok" ] || { ctl endpoint health || true; cmd_stop; die "the cluster did not become healthy in 60s; logs in $demo/*.log"; }

	echo
	echo "== etcdpki auth apply: each certificate's CN an etcd user with only its keys (a new PKI has auth on)"
	"$etcdpki" auth apply --spec "$spec" --dir "$pki"
	echo
	echo "== etcdpki certs list --spec $spec --dir $pki"
	"$etcdpki" certs list --spec "$spec" --dir "$pki"
	echo
	echo "== etcdctl endpoint health, with the kube-apiserver's certificate"
	# With auth on etcdctl logs its read of "health" refused (permission
	# denied, which it counts healthy) as a warning; the table says it all.
	ctl endpoint health -w table 2>/dev/null
	ctl member list -w table
	# Under kube-apiserver's prefix: with auth on its certificate may
	# touch nothing else.
	ctl put /registry/demo/hello "from etcdpki" >/dev/null
	echo "put/get /registry/demo/hello: $(ctl get /registry/demo/hello --print-value-only)"
	echo
	echo "== kube-apiserver flags ($pki/apiserver/etcd-flags)"
	sed 's/^/  /' "$pki/apiserver/etcd-flags"
	cat <<EOF

The cluster is running: members etcd-1..3 on 127.0.0.1-3, pids in $demo/*.pid, logs in $demo/*.log.
Try:
  bin/etcdpki verify --spec $spec --dir $pki
  bin/etcdpki rotate --spec $spec --dir $pki --renew-before 87600h
      (renews everything now and proves it in effect without restarting a member;
       add --restart=always to roll them with examples/demo.sh restart NODE)
  bin/etcdctl --endpoints=$endpoints \\
    --cacert=$pki/apiserver/etcd/ca.crt --cert=$pki/apiserver/apiserver-etcd-client.crt \\
    --key=$pki/apiserver/apiserver-etcd-client.key member list -w table

Grow it to 4 members and shrink it back (members run from etcd.env, so the removed member's
certificates are refused everywhere once revoked). $demo/with-etcd-4.yaml is the spec plus etcd-4:
  bin/etcdpki member add --spec $demo/with-etcd-4.yaml --dir $pki etcd-4
  bin/etcdpki member remove --spec $spec --dir $pki etcd-4
Stop it with: make demo-stop
EOF
}

cmd_stop() {
	local f any=
	for f in "$demo"/*.pid; do
		[ -e "$f" ] || continue
		any=1
		stop_member "$(basename "$f" .pid)"
	done
	[ -n "$any" ] || echo "the demo is not running"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
restart)
	[ $# -eq 2 ] || die "usage: $0 restart NODE"
	stop_member "$2"
	start_member "$2"
	;;
status)
	r="$(running)"
	if [ -n "$r" ]; then echo "running: $(echo $r)"; else echo "the demo is not running"; fi
	;;
*)
	echo "usage: $0 start|stop|status|restart NODE" >&2
	exit 2
	;;
esac
