package etcdtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// controlScriptMode lets the owner run the script; it carries the
// cluster's control token, so nobody else should read it.
const controlScriptMode = 0o700

// ControlCommand returns a shell command template that makes the harness
// run verb (start, stop, kill or restart) on the node the template is
// rendered for: `'DIR/etcdtest-ctl' restart {{.Name}}`. Every node of a
// harness spec has ControlCommand("restart") as its restart template, so
// `etcdpki rotate` restarts members the way it would on real hosts, and
// the harness still owns the processes (their logs, their cleanup, their
// death with the test binary).
//
// The command blocks until the harness has acted: for start and restart,
// until the new process listens on its client port (not until it has
// joined the cluster: waiting for that is the caller's job, as after
// `systemctl restart etcd`). It exits 1 with the harness's error on stderr
// when the action failed, or when the test owning the cluster has ended.
func (c *Cluster) ControlCommand(verb string) string {
	return fmt.Sprintf("'%s' %s {{.Name}}", c.Control, verb)
}

// startControl listens on a loopback port for control requests and writes
// the control script that sends them. The script needs bash for its
// /dev/tcp redirection; that spares the harness building a helper binary
// and works from any `sh -c` that rotate runs templates with.
func (c *Cluster) startControl() error {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return fmt.Errorf("control token: %w", err)
	}
	c.token = hex.EncodeToString(tok)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	c.ctl = l
	_, port, _ := net.SplitHostPort(l.Addr().String())
	script := fmt.Sprintf(`#!/usr/bin/env bash
# Control script of one etcdtest cluster (internal/testharness/etcdtest): asks the Go
# test that owns the cluster to act on a member, so that the member stays
# the test's child process.
# Usage: %[1]s start|stop|kill|restart NODE
set -euo pipefail
if [ $# -ne 2 ]; then
	echo "usage: $0 start|stop|kill|restart NODE" >&2
	exit 2
fi
if ! exec 3<>/dev/tcp/127.0.0.1/%[2]s; then
	echo "$0 $1 $2: the test that owns this cluster has ended" >&2
	exit 1
fi
printf '%%s %%s %%s\n' %[3]s "$1" "$2" >&3
reply=""
IFS= read -r reply <&3 || true
if [ "$reply" = ok ]; then
	exit 0
fi
echo "$0 $1 $2: ${reply:-no reply from the test}" >&2
exit 1
`, c.Control, port, c.token)
	if err := os.WriteFile(c.Control, []byte(script), controlScriptMode); err != nil {
		l.Close()
		return fmt.Errorf("write control script: %w", err)
	}
	go c.serveControl()
	return nil
}

func (c *Cluster) serveControl() {
	for {
		conn, err := c.ctl.Accept()
		if err != nil {
			return // closed by cleanup
		}
		go c.handleControl(conn)
	}
}

// controlTimeout bounds one request: a graceful stop and a start.
const controlTimeout = StopTimeout + time.Minute

func (c *Cluster) handleControl(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(controlTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return
	}
	reply := "ok"
	if err := c.control(strings.Fields(line)); err != nil {
		reply = "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	fmt.Fprintln(conn, reply)
}

func (c *Cluster) control(f []string) error {
	if len(f) != 3 || f[0] != c.token {
		return fmt.Errorf("bad control request")
	}
	verb, name := f[1], f[2]
	start := time.Now()
	defer func() {
		c.mu.Lock()
		obs := c.observer
		c.mu.Unlock()
		if obs != nil {
			obs(name, verb, start, time.Now())
		}
	}()
	m := c.Member(name)
	if m == nil {
		c.mu.Lock()
		h := c.handlers[name]
		c.mu.Unlock()
		if h != nil {
			return h(verb)
		}
		return fmt.Errorf("no member %q in this cluster", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch verb {
	case "stop":
		return m.Stop()
	case "kill":
		return m.Kill()
	case "start":
		if err := m.Start(); err != nil {
			return err
		}
		return m.waitListening(ctx)
	case "restart":
		if err := m.Restart(); err != nil {
			return err
		}
		return m.waitListening(ctx)
	}
	return fmt.Errorf("unknown verb %q (start, stop, kill or restart)", verb)
}

// HandleControl makes the control script act on name, a process that is
// not a member (kube-apiserver, which the selfhost harness runs): `DIR/
// etcdtest-ctl restart NAME` calls h("restart") in the test and exits 0
// when it returns nil. A client's restart template then restarts it the
// way a member's restarts a member.
func (c *Cluster) HandleControl(name string, h func(verb string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handlers == nil {
		c.handlers = map[string]func(string) error{}
	}
	c.handlers[name] = h
}

// ObserveControl calls f after every action of the control script, with
// when it was asked for and when it was done: a test's record of the
// restart windows.
func (c *Cluster) ObserveControl(f func(name, verb string, start, end time.Time)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.observer = f
}
