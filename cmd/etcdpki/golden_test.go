package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current code")

// versionDir matches atomicdir's timestamped version directories, the one
// part of a tree's paths that changes from run to run.
var versionDir = regexp.MustCompile(`\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+`)

// TestGoldenThreeNode pins what init writes for examples/three-node.yaml
// (every path and mode, each certificate's CN, organisation, SANs, EKUs
// and issuer, each config file's text) and what certs list -o json
// reports, with serials, dates, keys and the temp dir normalised away. A
// refactoring that changes a name, path, mode or certificate field fails
// here; run with -update only for an intended change.
func TestGoldenThreeNode(t *testing.T) {
	dir := t.TempDir()
	spec, err := os.ReadFile("../../examples/three-node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "three-node.yaml")
	if err := os.WriteFile(specPath, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(dir, "pki")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"etcdpki", "init", "--spec", specPath, "--dir", pki}, &out, &errb); code != 0 {
		t.Fatalf("init exited %d: %s", code, errb.String())
	}
	checkGolden(t, "three-node-tree.golden", describeTree(t, pki))

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"etcdpki", "certs", "list", "--spec", specPath, "--dir", pki, "-o", "json"}, &out, &errb); code != 0 {
		t.Fatalf("certs list exited %d: %s", code, errb.String())
	}
	checkGolden(t, "three-node-list.golden", normaliseList(t, out.Bytes(), dir))
}

// describeTree prints one line per path: mode, symlink target, and for a
// certificate its subject fields, for a key only its type, for any other
// file its text.
func describeTree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(&b, "%s %v", versionDir.ReplaceAllString(rel, "..VERSION"), info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s\n", versionDir.ReplaceAllString(target, "..VERSION"))
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(describeFile(t, data, root))
		default:
			b.WriteString("\n")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func describeFile(t *testing.T, data []byte, root string) string {
	t.Helper()
	if l, err := x509.ParseRevocationList(data); err == nil {
		return fmt.Sprintf(" crl issuer=%s number=%v revoked=%d validity=%s\n", l.Issuer.CommonName, l.Number, len(l.RevokedCertificateEntries),
			l.NextUpdate.Sub(l.ThisUpdate).Round(60*60*1e9))
	}
	blk, _ := pem.Decode(data)
	switch {
	case blk == nil:
		text := strings.ReplaceAll(string(data), root, "$PKI")
		return "\n\t" + strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n\t") + "\n"
	case blk.Type != "CERTIFICATE":
		return " " + blk.Type + "\n"
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	var ekus []string
	for _, u := range c.ExtKeyUsage {
		ekus = append(ekus, fmt.Sprint(u))
	}
	return fmt.Sprintf(" cert CN=%s O=%v issuer=%s ca=%v ku=%d eku=%v dns=%v ip=%v key=%v validity=%s\n",
		c.Subject.CommonName, c.Subject.Organization, c.Issuer.CommonName, c.IsCA, c.KeyUsage, ekus,
		c.DNSNames, ips, c.PublicKeyAlgorithm, c.NotAfter.Sub(c.NotBefore).Round(24*60*60*1e9))
}

// normaliseList blanks certs list's volatile fields and the temp dir.
func normaliseList(t *testing.T, data []byte, dir string) string {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("certs list -o json: %v\n%s", err, data)
	}
	for _, r := range rows {
		for _, k := range []string{"notBefore", "expires", "residualSeconds", "serial"} {
			if _, ok := r[k]; ok {
				r[k] = "X"
			}
		}
		for _, k := range []string{"path", "key"} {
			if p, ok := r[k].(string); ok {
				r[k] = strings.Replace(p, dir, "$DIR", 1)
			}
		}
	}
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	var b strings.Builder
	for _, r := range rows {
		for _, k := range keys(r) {
			fmt.Fprintf(&b, "%s=%v ", k, r[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update only for an intended change)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestHelpExitCodesOnce runs --help three times in one process: each run
// prints the EXIT CODES block once, not once more per earlier run.
func TestHelpExitCodesOnce(t *testing.T) {
	for i := 0; i < 3; i++ {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"etcdpki", "--help"}, &out, &errb); code != 0 {
			t.Fatalf("run %d: --help exited %d: %s", i, code, errb.String())
		}
		if n := strings.Count(out.String(), "EXIT CODES:"); n != 1 {
			t.Fatalf("run %d: EXIT CODES printed %d times:\n%s", i, n, out.String())
		}
	}
}
