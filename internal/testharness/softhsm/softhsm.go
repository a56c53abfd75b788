// Package softhsm gives a test a fresh SoftHSM2 token of its own, so the
// CA-in-a-token tests run against a real PKCS#11 module. Imported by tests
// only.
package softhsm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/etcdpki/etcdpki/internal/testharness/ramdir"
)

// ModuleEnv overrides where the SoftHSM2 module is looked for.
const ModuleEnv = "SOFTHSM2_MODULE"

// Where Debian's softhsm2 package puts the module (the first is a link to
// the second on amd64).
var modulePaths = []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"}

// Token is one test's SoftHSM2 token.
type Token struct {
	// Label is the token's label (the URI's token=).
	Label string
	// Module is the PKCS#11 library.
	Module string
	// PINFile holds the user PIN, mode 0600.
	PINFile string
	// PIN is the user PIN; SOPIN the security officer's.
	PIN, SOPIN string
	// Conf is the SOFTHSM2_CONF the test runs with.
	Conf string
}

// New initialises a token labelled label in t.TempDir() and points
// SOFTHSM2_CONF at it for the rest of the test (so the test may not run in
// parallel). A machine without SoftHSM2 fails the test: `make deps`
// installs it, and no CI run may skip these tests.
func New(t testing.TB, label string) *Token {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Fatalf("softhsm2-util not found: install SoftHSM2 (make deps; Debian package softhsm2)")
	}
	module := os.Getenv(ModuleEnv)
	if module == "" {
		for _, p := range modulePaths {
			if _, err := os.Stat(p); err == nil {
				module = p
				break
			}
		}
	}
	if module == "" {
		t.Fatalf("SoftHSM2 module not found in %v: install SoftHSM2 (make deps) or set %s", modulePaths, ModuleEnv)
	}
	// The token's files on a RAM file system, as the crash tests' trees:
	// the crash-at-every-step tests with a token make one per step.
	dir := ramdir.TempDir(t)
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tk := &Token{Label: label, Module: module, PIN: "4711-test", SOPIN: "0815-test-so", Conf: conf, PINFile: filepath.Join(dir, "pin")}
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", tk.PIN, "--so-pin", tk.SOPIN)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	if err := os.WriteFile(tk.PINFile, []byte(tk.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return tk
}

// URI is the pkcs11: URI of the key labelled object in this token, its
// PIN from the PIN file.
func (tk *Token) URI(object string) string {
	return fmt.Sprintf("pkcs11:token=%s;object=%s?module-path=%s&pin-source=file:%s", tk.Label, object, tk.Module, tk.PINFile)
}
