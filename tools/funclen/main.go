// Command funclen fails when a production function or file grows past the
// project's limits (a function over 90 lines, a file over 420), so a reader
// can hold any one function, and any one file, in their head. It is run by
// `make vet`.
//
// Production code is every .go file outside tests (_test.go), tools/ and
// internal/testharness. A function's length counts from its func keyword to
// its closing brace; its doc comment does not count.
//
// Usage: go run ./tools/funclen [dir] (dir defaults to the current one).
// Each offender is printed as file:line name length, one a line, and the
// exit code is 1 when there is any.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The limits the project holds its production code to.
const (
	maxFuncLines = 90
	maxFileLines = 420
)

// skipDirs are not production code: build tools, the test harness, and
// directories the go tool ignores anyway.
var skipDirs = []string{"tools", filepath.Join("internal", "testharness")}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	n, err := check(root, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(2)
	}
	if n > 0 {
		fmt.Fprintf(os.Stderr, "funclen: %d over the limits (function %d lines, file %d lines)\n", n, maxFuncLines, maxFileLines)
		os.Exit(1)
	}
}

// check walks root and writes one line per offender to w; it returns how
// many it found.
func check(root string, w io.Writer) (int, error) {
	found := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipped(rel, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		n, err := checkFile(path, w)
		found += n
		return err
	})
	return found, err
}

// skipped reports whether the directory rel (relative to the root) holds no
// production code.
func skipped(rel, name string) bool {
	if rel == "." {
		return false
	}
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" {
		return true
	}
	for _, s := range skipDirs {
		if rel == s {
			return true
		}
	}
	return false
}

// checkFile reports the file itself when it is too long, and each function
// in it that is.
func checkFile(path string, w io.Writer) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, data, parser.SkipObjectResolution|parser.ParseComments)
	if err != nil {
		return 0, err
	}
	if ast.IsGenerated(f) {
		// A generator's output (controller-gen's deepcopy) grows with
		// the API; its source, the types, is what the limits keep small.
		return 0, nil
	}
	found := 0
	if lines := countLines(data); lines > maxFileLines {
		fmt.Fprintf(w, "%s:1 file %d\n", path, lines)
		found++
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		start := fset.Position(fn.Pos()).Line
		length := fset.Position(fn.End()).Line - start + 1
		if length > maxFuncLines {
			fmt.Fprintf(w, "%s:%d %s %d\n", path, start, funcName(fn), length)
			found++
		}
	}
	return found, nil
}

// countLines counts lines as wc -l does, and a last line without its
// newline too.
func countLines(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// funcName names a function as a reader looks for it: Recv.Name for a
// method, Name otherwise.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr: // a generic receiver, T[P]
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
