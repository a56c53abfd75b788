package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// write creates dir/name holding a function fn of n lines (func line to
// closing brace) and pad blank lines after it.
func write(t *testing.T, dir, name, fn string, n, pad int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("package p\n\n// doc comments do not count\nfunc " + fn + "() {\n")
	for i := 0; i < n-2; i++ {
		b.WriteString("\t_ = 0\n")
	}
	b.WriteString("}\n" + strings.Repeat("\n", pad))
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFlagsOnlyWhatIsOverTheLimitsInProductionCode(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a/ok.go", "AtLimit", maxFuncLines, 0)
	write(t, dir, "a/long.go", "TooLong", maxFuncLines+1, 0)
	// 3 lines before the function, 10 of it, then pad: one line over the
	// file limit, and one exactly at it.
	write(t, dir, "b/big.go", "Small", 10, maxFileLines-13+1)
	write(t, dir, "b/fits.go", "Small", 10, maxFileLines-13)
	write(t, dir, "a/long_test.go", "TestLong", 200, 0)
	write(t, dir, "tools/x/long.go", "Tool", 200, 0)
	write(t, dir, "internal/testharness/h/long.go", "Harness", 200, 0)
	write(t, dir, "a/testdata/long.go", "Data", 200, 0)

	var out strings.Builder
	n, err := check(dir, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "a/long.go") + ":4 TooLong 91\n" +
		filepath.Join(dir, "b/big.go") + ":1 file 421\n"
	if out.String() != want || n != 2 {
		t.Errorf("check found %d:\n%s\nwant 2:\n%s", n, out.String(), want)
	}
}

func TestNamesMethodsByTheirReceiver(t *testing.T) {
	dir := t.TempDir()
	src := "package p\n\ntype T[P any] struct{}\n\nfunc (t *T[P]) M() {\n" + strings.Repeat("\t_ = 0\n", maxFuncLines) + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "m.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := check(dir, &out); err != nil {
		t.Fatal(err)
	}
	if want := ":5 T.M 92\n"; !strings.HasSuffix(out.String(), want) {
		t.Errorf("got %q, want a line ending %q", out.String(), want)
	}
}
