package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// badKinds are the files that must never be read as input: a FIFO (open
// blocks until a writer comes), /dev/zero and a link to it (never end), a
// directory, and a 2 GiB sparse file (no disk used; read whole, it would
// take 2 GiB of memory). Each makes one at path.
var badKinds = map[string]func(t *testing.T, path string){
	"fifo": func(t *testing.T, path string) {
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
	},
	"devzero": func(t *testing.T, path string) {
		if err := os.Symlink("/dev/zero", path); err != nil {
			t.Fatal(err)
		}
	},
	"dir": func(t *testing.T, path string) {
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
	},
	"sparse": func(t *testing.T, path string) {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, 2<<30); err != nil {
			t.Fatal(err)
		}
	},
}

// inputCase is one file-taking input of one command: args with BAD where
// the bad file goes, and the file the message must name. dir is set when
// the flag takes a directory: BAD is then a directory holding the bad
// file under the name file.
type inputCase struct {
	name string
	args []string
	file string // for a directory flag: the name the bad file has in it
	// dirFlag: the flag takes a directory, so a directory is no bad
	// input for it.
	dirFlag bool
	// dirNamed: a directory in place of file is skipped, and the message
	// names the directory flag's directory (kubelet, too, skips
	// directories among static Pod manifests).
	dirNamed bool
}

// TestEveryInputFileRefusesOddFiles gives every file-taking flag of every
// command, and the files read from a directory flag, each of badKinds:
// each run exits 2 promptly with one line naming the file, and changes
// nothing on disk.
func TestEveryInputFileRefusesOddFiles(t *testing.T) {
	w := t.TempDir()
	spec := filepath.Join(w, "spec.yaml")
	os.WriteFile(spec, []byte("nodes:\n  - {name: etcd-node-1, ips: [127.0.0.1]}\n  - {name: etcd-node-2, ips: [127.0.0.2]}\n"), 0o600)
	pkiDir, made := filepath.Join(w, "pki"), filepath.Join(w, "made")
	for _, d := range []string{pkiDir, made} {
		if code := run(context.Background(), []string{"etcdpki", "init", "--spec", spec, "--dir", d}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
			t.Fatalf("init %s: exit %d", d, code)
		}
	}
	caCrt, caKey := filepath.Join(made, "etcd", "ca.crt"), filepath.Join(made, "etcd", "ca.key")
	cliCrt, cliKey := filepath.Join(made, "apiserver", "apiserver-etcd-client.crt"), filepath.Join(made, "apiserver", "apiserver-etcd-client.key")
	srvCrt, srvKey := filepath.Join(made, "nodes", "etcd-node-1", "etcd", "server.crt"), filepath.Join(made, "nodes", "etcd-node-1", "etcd", "server.key")
	adopted := filepath.Join(w, "adopted")
	adoptArgs := func(more ...string) []string {
		return append([]string{"adopt", "--spec", spec, "--dir", adopted}, more...)
	}
	ep := "--endpoints=https://127.0.0.1:1"
	kc := filepath.Join(w, "kubeconfig")
	os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: t}}]\n"), 0o600)
	api := []string{"--kubeconfig", kc, "--namespace", "etcd-system"}
	cases := []inputCase{
		{name: "init --spec", args: []string{"init", "--spec", "BAD", "--dir", pkiDir}},
		{name: "adopt --spec", args: []string{"adopt", "--spec", "BAD", "--dir", adopted, "--ca-cert", caCrt, "--ca-key", caKey}},
		{name: "issue --spec", args: []string{"issue", "--spec", "BAD", "--dir", pkiDir, "client", "ops"}},
		{name: "certs list --spec", args: []string{"certs", "list", "--spec", "BAD", "--dir", pkiDir}},
		{name: "certs renew --spec", args: []string{"certs", "renew", "--spec", "BAD", "--dir", pkiDir, "--all"}},
		{name: "certs revoke --spec", args: []string{"certs", "revoke", "--spec", "BAD", "--dir", pkiDir, "etcd-node-1"}},
		{name: "rotate --spec", args: []string{"rotate", "--spec", "BAD", "--dir", pkiDir, "--dry-run"}},
		{name: "ca rotate --spec", args: []string{"ca", "rotate", "--spec", "BAD", "--dir", pkiDir}},
		{name: "verify --spec", args: []string{"verify", "--spec", "BAD", "--dir", pkiDir}},
		{name: "member add --spec", args: []string{"member", "add", "--spec", "BAD", "--dir", pkiDir, "etcd-node-2"}},
		{name: "member remove --spec", args: []string{"member", "remove", "--spec", "BAD", "--dir", pkiDir, "etcd-node-2"}},
		{name: "export --spec", args: append([]string{"export", "--spec", "BAD", "--dir", pkiDir}, api...)},
		{name: "export --kubeconfig", args: []string{"export", "--spec", spec, "--dir", pkiDir, "--kubeconfig", "BAD", "--namespace", "etcd-system"}},
		{name: "rotate --kubeconfig", args: []string{"rotate", "--kubeconfig", "BAD", "--namespace", "etcd-system", "--cluster", "etcd", "--all"}},
		{name: "agent --kubeconfig", args: []string{"agent", "--kubeconfig", "BAD", "--namespace", "etcd-system", "--cluster", "etcd", "--node", "etcd-node-1", "--dir", filepath.Join(w, "agent")}},
		{name: "controller --kubeconfig", args: []string{"controller", "--kubeconfig", "BAD", "--namespace", "etcd-system", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}},
		{name: "rotate --metrics-file", args: []string{"rotate", "--spec", spec, "--dir", pkiDir, "--metrics-file", "BAD"}},
		{name: "adopt --ca-cert", args: adoptArgs("--ca-cert", "BAD", "--ca-key", caKey)},
		{name: "adopt --ca-key", args: adoptArgs("--ca-cert", caCrt, "--ca-key", "BAD")},
		{name: "adopt --node-dir", args: adoptArgs("--ca-cert", caCrt, "--ca-key", caKey, "--node-dir", "etcd-node-1=BAD"), dirFlag: true},
		{name: "adopt --node-dir cert", args: adoptArgs("--ca-cert", caCrt, "--ca-key", caKey, "--node-dir", "etcd-node-1=BAD"), file: "server.crt"},
		{name: "adopt --node-dir key", args: adoptArgs("--ca-cert", caCrt, "--ca-key", caKey, "--node-dir", "etcd-node-1=BAD"), file: "server.key"},
		{name: "adopt --client-dir", args: adoptArgs("--ca-cert", caCrt, "--ca-key", caKey, "--client-dir", "kube-apiserver=BAD"), dirFlag: true},
		{name: "adopt --client-dir cert", args: adoptArgs("--ca-cert", caCrt, "--ca-key", caKey, "--client-dir", "kube-apiserver=BAD"), file: "apiserver-etcd-client.crt"},
		{name: "adopt --client-dir key", args: adoptArgs("--ca-cert", caCrt, "--ca-key", caKey, "--client-dir", "kube-apiserver=BAD"), file: "apiserver-etcd-client.key"},
		{name: "verify --cacert", args: []string{"verify", ep, "--cacert", "BAD", "--cert", cliCrt, "--key", cliKey}},
		{name: "verify --cert", args: []string{"verify", ep, "--cacert", caCrt, "--cert", "BAD", "--key", cliKey}},
		{name: "verify --key", args: []string{"verify", ep, "--cacert", caCrt, "--cert", cliCrt, "--key", "BAD"}},
		{name: "verify --apiserver-manifest", args: []string{"verify", "--apiserver-manifest", "BAD"}},
		{name: "verify --manifests-dir", args: []string{"verify", "--manifests-dir", "BAD"}, dirFlag: true},
		{name: "verify --manifests-dir manifest", args: []string{"verify", "--manifests-dir", "BAD"}, file: "kube-apiserver.yaml", dirNamed: true},
		{name: "init --dir", args: []string{"init", "--spec", spec, "--dir", "BAD"}, dirFlag: true},
		{name: "certs list --dir", args: []string{"certs", "list", "--spec", spec, "--dir", "BAD"}, dirFlag: true},
		{name: "rotate --dir", args: []string{"rotate", "--spec", spec, "--dir", "BAD", "--dry-run"}, dirFlag: true},
		{name: "verify --dir", args: []string{"verify", "--spec", spec, "--dir", "BAD"}, dirFlag: true},
		{name: "export --dir", args: append([]string{"export", "--spec", spec, "--dir", "BAD"}, api...), dirFlag: true},
		{name: "auth apply --spec", args: []string{"auth", "apply", "--spec", "BAD", "--dir", pkiDir}},
		{name: "auth apply --dir", args: []string{"auth", "apply", "--spec", spec, "--dir", "BAD"}, dirFlag: true},
		{name: "auth apply --dir auth-default", args: []string{"auth", "apply", "--spec", spec, "--dir", "BAD"}, file: "auth-default"},
		{name: "certs list --dir auth-default", args: []string{"certs", "list", "--spec", spec, "--dir", "BAD"}, file: "auth-default"},
		{name: "issue root --spec", args: []string{"issue", "--spec", "BAD", "--dir", pkiDir, "root"}},
		{name: "issue root --dir auth-default", args: []string{"issue", "--spec", spec, "--dir", "BAD", "root"}, file: "auth-default"},
		{name: "certs revoke --kubeconfig", args: []string{"certs", "revoke", "--kubeconfig", "BAD", "--namespace", "etcd-system", "--cluster", "etcd", "etcd-node-1"}},
		{name: "ca rotate --kubeconfig", args: []string{"ca", "rotate", "--kubeconfig", "BAD", "--namespace", "etcd-system", "--cluster", "etcd"}},
	}
	// The good half of a pair in a directory flag: the bad file's partner.
	partner := map[string][2]string{
		"server.crt": {"server.key", srvKey}, "server.key": {"server.crt", srvCrt},
		"apiserver-etcd-client.crt": {"apiserver-etcd-client.key", cliKey}, "apiserver-etcd-client.key": {"apiserver-etcd-client.crt", cliCrt},
	}
	before := snapshot(t, w, filepath.Join(w, "bad"))
	n := 0
	for _, tc := range cases {
		for kind, make := range badKinds {
			if kind == "dir" && tc.dirFlag {
				continue
			}
			n++
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				bad := filepath.Join(w, "bad", fmt.Sprint(n))
				os.MkdirAll(bad, 0o700)
				arg, named := filepath.Join(bad, kind), filepath.Join(bad, kind)
				if tc.file != "" {
					arg = filepath.Join(bad, "d")
					os.Mkdir(arg, 0o700)
					named = filepath.Join(arg, tc.file)
					if p, ok := partner[tc.file]; ok {
						data, _ := os.ReadFile(p[1])
						os.WriteFile(filepath.Join(arg, p[0]), data, 0o600)
					}
				}
				make(t, named)
				if kind == "dir" && tc.dirNamed {
					named = arg
				}
				args := []string{"etcdpki"}
				for _, a := range tc.args {
					args = append(args, strings.ReplaceAll(a, "BAD", arg))
				}
				code, stderr := runSoon(t, args)
				if code != 2 {
					t.Errorf("%v: exit %d, want 2; stderr: %s", args[1:], code, stderr)
				}
				if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, named) {
					t.Errorf("%v: stderr %q, want one line naming %s", args[1:], stderr, named)
				}
			})
		}
	}
	if after := snapshot(t, w, filepath.Join(w, "bad")); after != before {
		t.Errorf("files changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// runSoon runs etcdpki in this process; a run still going after a minute
// is blocked on what it should have refused, and fails the test.
func runSoon(t *testing.T, args []string) (int, string) {
	t.Helper()
	type res struct {
		code   int
		stderr string
	}
	done := make(chan res, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		done <- res{code, stderr.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.stderr
	case <-time.After(time.Minute):
		t.Fatalf("%v still running after a minute: blocked on its input", args[1:])
		return 0, ""
	}
}
