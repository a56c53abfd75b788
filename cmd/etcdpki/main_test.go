package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as etcdpki inside scripts, so the
// CLI is tested end to end: real argument parsing, real exit codes.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		// main itself, signal handling included, as the real binary runs.
		"etcdpki": main,
	})
}

// TestScripts runs testdata/script/*.txtar. Extra commands:
//
//	exits CODE PROG ARGS...  run PROG and require that exit code
//	tree DIR                 print every path, mode, link and content hash
//	oneline                  the last command's stderr is exactly one line
//	certserial VAR FILE      set VAR to the serial (lower-case hex) of FILE's first certificate
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 || neg {
					ts.Fatalf("usage: exits CODE PROG ARGS...")
				}
				err := ts.Exec(args[1], args[2:]...)
				got := "0"
				if err != nil {
					got = strings.TrimPrefix(err.Error(), "exit status ")
				}
				if got != args[0] {
					ts.Fatalf("%s exited %s, want %s", args[1], got, args[0])
				}
			},
			"certserial": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 || neg {
					ts.Fatalf("usage: certserial VAR FILE")
				}
				block, _ := pem.Decode([]byte(ts.ReadFile(args[1])))
				if block == nil {
					ts.Fatalf("%s: no PEM certificate", args[1])
				}
				c, err := x509.ParseCertificate(block.Bytes)
				ts.Check(err)
				ts.Setenv(args[0], fmt.Sprintf("%x", c.SerialNumber))
			},
			"oneline": func(ts *testscript.TestScript, neg bool, args []string) {
				stderr := ts.ReadFile("stderr")
				if one := strings.Count(stderr, "\n") == 1 && strings.HasSuffix(stderr, "\n"); one == neg {
					ts.Fatalf("stderr is not one line: %q", stderr)
				}
			},
			"tree": func(ts *testscript.TestScript, neg bool, args []string) {
				root := ts.MkAbs(args[0])
				filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
					if err != nil {
						ts.Fatalf("%v", err)
					}
					info, _ := os.Lstat(p)
					rel, _ := filepath.Rel(root, p)
					line := fmt.Sprintf("%s %v", rel, info.Mode())
					if info.Mode()&fs.ModeSymlink != 0 {
						target, _ := os.Readlink(p)
						line += " -> " + target
					} else if info.Mode().IsRegular() {
						data, _ := os.ReadFile(p)
						line += fmt.Sprintf(" %x", sha256.Sum256(data))
					}
					fmt.Fprintln(ts.Stdout(), line)
					return nil
				})
			},
		},
	})
}
