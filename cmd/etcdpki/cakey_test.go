//go:build cgo && !nopkcs11

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/softhsm"
)

// TestSpecCAKeyDisagreementIsReported: PKI/etcd/ca.key.uri is what every
// signing uses; a spec whose ca.key says otherwise (another PIN source,
// another key) stops every command that would sign (exit 2, one line,
// nothing changed) and is a warning on certs list; init records the
// spec's URI when it names the same key, and then the writers run.
func TestSpecCAKeyDisagreementIsReported(t *testing.T) {
	tk := softhsm.New(t, "etcd")
	root := t.TempDir()
	t.Chdir(root)
	pkiDir := filepath.Join(root, "pki")
	writeSpec := func(name, uri string) string {
		p := filepath.Join(root, name)
		body := "name: t\nca:\n  key: \"" + uri + "\"\nnodes:\n  - name: n1\n    ips: [127.0.0.31]\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	etcdpki := func(args ...string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(t.Context(), append([]string{"etcdpki"}, args...), &out, &errOut)
		return code, errOut.String()
	}
	first := writeSpec("first.yaml", tk.URI("etcd-ca"))
	if code, stderr := etcdpki("init", "--spec", first, "--dir", pkiDir); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	// The PIN file moves: the spec says so, the PKI's record does not.
	pin2 := filepath.Join(root, "pin2")
	if err := os.WriteFile(pin2, []byte(tk.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	moved := writeSpec("moved.yaml", strings.Replace(tk.URI("etcd-ca"), tk.PINFile, pin2, 1))
	other := writeSpec("other.yaml", tk.URI("other-ca"))
	for _, tc := range []struct{ spec, want string }{
		{moved, "run etcdpki init to record the spec's"},
		{other, "says the CA key is pkcs11: token etcd, object other-ca"},
	} {
		for _, args := range [][]string{
			{"certs", "renew", "--spec", tc.spec, "--dir", pkiDir, "--all"},
			{"issue", "--spec", tc.spec, "--dir", pkiDir, "client", "ops"},
			{"certs", "revoke", "--spec", tc.spec, "--dir", pkiDir, "n1"},
			{"rotate", "--spec", tc.spec, "--dir", pkiDir},
			{"member", "remove", "--spec", tc.spec, "--dir", pkiDir, "n2"},
		} {
			before := snapshot(t, root)
			code, stderr := etcdpki(args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("%v: exit %d, stderr %q; want 2 and one line saying %q", args, code, stderr, tc.want)
			}
			if snapshot(t, root) != before {
				t.Errorf("%v changed the tree", args)
			}
		}
		code, stderr := etcdpki("certs", "list", "--spec", tc.spec, "--dir", pkiDir)
		if code != 0 || !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("certs list with %s: exit %d, stderr %q; want 0 and a warning", filepath.Base(tc.spec), code, stderr)
		}
	}
	// init takes the same key's new PIN source, checked against ca.crt;
	// another key it refuses.
	if code, stderr := etcdpki("init", "--spec", other, "--dir", pkiDir); code != 2 {
		t.Errorf("init with another key: exit %d: %s", code, stderr)
	}
	if code, stderr := etcdpki("init", "--spec", moved, "--dir", pkiDir); code != 0 {
		t.Fatalf("init with the moved PIN file: exit %d: %s", code, stderr)
	}
	if data, err := os.ReadFile(filepath.Join(pkiDir, "etcd", "ca.key.uri")); err != nil || !strings.Contains(string(data), pin2) {
		t.Errorf("ca.key.uri after init: %q %v, want the spec's pin-source %s", data, err, pin2)
	}
	if code, stderr := etcdpki("certs", "renew", "--spec", moved, "--dir", pkiDir, "--all"); code != 0 {
		t.Errorf("renew once the record agrees: exit %d: %s", code, stderr)
	}
}
