package layering

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// writerPackages may write files: issue is the one writer of the PKI
// directory, and internal/atomicdir is the primitive it writes with.
var writerPackages = map[string]bool{
	"issue":              true,
	"internal/atomicdir": true,
}

// exemptTrees are not production code: imported by tests only (checked
// by TestNoProductionPackageImportsTheTestHarness), they build fixtures
// in the tests' temporary directories.
var exemptTrees = []string{"internal/testharness"}

// allowed lists the writes outside package issue, each by file and
// function, and why it is not issue's. An entry that matches nothing
// fails the test: the list shrinks with the code.
var allowed = map[string]string{
	// The lock is taken before any writer's first write, by issue's
	// writers and by the operations alike, and creating it is part of
	// taking it: an empty file, opened read-only, whose bytes never
	// change. It is in the PKI directory (PKI/rotate.lock), but holds no
	// data for anyone to read back.
	"internal/pkilock/pkilock.go Acquire": "creates the empty lock file PKI/rotate.lock (O_CREATE, read-only)",
	// The node_exporter textfile goes to the path the operator names with
	// --metrics-file (a textfile collector's directory), not into the PKI
	// directory; atomically, so the collector never reads half of it.
	// The agent's textfile goes the same way.
	"runner/metrics.go WriteTextfile": "writes the operator's --metrics-file, outside the PKI directory",
}

// osWriters are the functions of os (and io/ioutil, syscall,
// golang.org/x/sys/unix) that change the filesystem. os.OpenFile is
// checked apart: it writes only with write flags.
var osWriters = map[string]map[string]bool{
	"os": set("WriteFile", "Rename", "Remove", "RemoveAll", "Create", "CreateTemp", "Mkdir", "MkdirAll",
		"MkdirTemp", "Symlink", "Link", "Chmod", "Chown", "Lchown", "Chtimes", "Truncate"),
	"io/ioutil": set("WriteFile", "TempFile", "TempDir"),
	"syscall": set("Creat", "Unlink", "Unlinkat", "Rename", "Renameat", "Mkdir", "Mkdirat", "Rmdir", "Symlink",
		"Link", "Chmod", "Fchmod", "Fchmodat", "Chown", "Fchown", "Lchown", "Truncate", "Ftruncate"),
	"golang.org/x/sys/unix": set("Creat", "Unlink", "Unlinkat", "Rename", "Renameat", "Renameat2", "Mkdir",
		"Mkdirat", "Rmdir", "Symlink", "Symlinkat", "Link", "Linkat", "Chmod", "Fchmod", "Fchmodat",
		"Chown", "Fchown", "Lchown", "Truncate", "Ftruncate"),
}

// atomicdirWriters are internal/atomicdir's writers: every use of a
// Batch is a write (it exists to switch stores).
var atomicdirWriters = set("Update", "WriteFile", "NewDir", "DropOld", "RemoveAll", "Migrate", "Batch")

// writeFlags make an os.OpenFile a write.
var writeFlags = set("O_WRONLY", "O_RDWR", "O_CREATE", "O_CREAT", "O_TRUNC", "O_APPEND")

// readFlags leave an os.OpenFile a read.
var readFlags = set("O_RDONLY", "O_NONBLOCK", "O_NOFOLLOW", "O_CLOEXEC", "O_SYNC", "O_DIRECTORY", "O_NOCTTY", "O_NOATIME")

// TestOnlyIssueWritesThePKIDirectory fails on a write to the filesystem
// in a production package other than issue and internal/atomicdir, unless
// it is allowed above with its reason: every file in the PKI directory is
// written by package issue, atomically, with its mode enforced.
func TestOnlyIssueWritesThePKIDirectory(t *testing.T) {
	root, module := moduleRoot(t)
	found := map[string]bool{}
	var bad []string
	for _, w := range productionWrites(t, root, module) {
		if writerPackages[w.pkg] {
			continue
		}
		key := w.file + " " + w.fn
		if _, ok := allowed[key]; ok {
			found[key] = true
			continue
		}
		bad = append(bad, fmt.Sprintf("%s:%d (func %s): %s", w.file, w.line, w.fn, w.what))
	}
	for _, b := range bad {
		t.Errorf("%s: only package issue writes (the PKI directory's one writer); move the write into issue, or allow it in internal/layering with why it is not the PKI directory's", b)
	}
	var stale []string
	for key := range allowed {
		if !found[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		t.Errorf("allowed write %q matches no write any more: remove the entry", key)
	}
}

// TestNoProductionPackageImportsTheTestHarness keeps exemptTrees honest:
// they are skipped above because nothing but tests imports them.
func TestNoProductionPackageImportsTheTestHarness(t *testing.T) {
	root, module := moduleRoot(t)
	eachFile(t, root, func(_ *token.FileSet, rel string, f *ast.File) {
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, tree := range exemptTrees {
				if path == module+"/"+tree || strings.HasPrefix(path, module+"/"+tree+"/") {
					t.Errorf("%s imports %s, which only tests may import", rel, path)
				}
			}
		}
	})
}

// TestTheCheckSeesAWrite proves the walk finds what it is for: a write
// through an import alias, a method value and an os.OpenFile with write
// flags, and not an os.OpenFile that only reads.
func TestTheCheckSeesAWrite(t *testing.T) {
	src := `package rotate

import (
	fsys "os"
	"syscall"

	ad "example.com/m/internal/atomicdir"
)

func a() { fsys.WriteFile("x", nil, 0o600) }
func b() { w := fsys.Rename; _ = w }
func c() { fsys.OpenFile("x", fsys.O_RDONLY|syscall.O_NONBLOCK, 0) }
func d() { fsys.OpenFile("x", fsys.O_WRONLY|fsys.O_CREATE, 0o600) }
func e(flags int) { fsys.OpenFile("x", flags, 0) }
func f() { var b ad.Batch; _ = b }
func g() { ad.Read("x", "y") }
func (r *runner) h() { ad.Update(st, nil, nil) }

var remove = fsys.Remove
`
	f, err := parser.ParseFile(token.NewFileSet(), "rotate/x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range writesIn(token.NewFileSet(), f, "example.com/m", "rotate", "rotate/x.go") {
		got = append(got, w.fn+": "+w.what)
	}
	want := []string{
		"a: os.WriteFile",
		"b: os.Rename",
		"d: os.OpenFile with write flags",
		"e: os.OpenFile with flags not known to only read",
		"f: internal/atomicdir.Batch",
		"runner.h: internal/atomicdir.Update",
		"(package level): os.Remove",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

type write struct {
	pkg, file, fn string
	line          int
	what          string
}

// productionWrites returns every write in the module's production code.
func productionWrites(t *testing.T, root, module string) []write {
	t.Helper()
	var all []write
	eachFile(t, root, func(fset *token.FileSet, rel string, f *ast.File) {
		all = append(all, writesIn(fset, f, module, filepath.ToSlash(filepath.Dir(rel)), rel)...)
	})
	if len(all) == 0 {
		t.Fatal("no write found anywhere, not even in package issue: the walk reads nothing")
	}
	return all
}

// eachFile parses every production Go file of the module (not a test,
// not in a nested module, testdata or an exempt tree), whatever its build
// constraints, and calls fn with its slash-separated path from root and
// the file set its positions are in.
func eachFile(t *testing.T, root string, fn func(fset *token.FileSet, rel string, f *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			base := d.Name()
			if base == "testdata" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || exempt(rel) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module (tools/etcd)
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		fn(fset, rel, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func exempt(rel string) bool {
	for _, tree := range exemptTrees {
		if rel == tree || strings.HasPrefix(rel, tree+"/") {
			return true
		}
	}
	return false
}

// writesIn finds the writes in one file. Package names are resolved
// through the file's imports, aliases included; a dot import of a
// watched package is reported, since its calls cannot be told apart.
func writesIn(fset *token.FileSet, f *ast.File, module, pkg, rel string) []write {
	names := map[string]string{} // local name -> watched import path
	var out []write
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if path == module+"/internal/atomicdir" {
			path = "internal/atomicdir"
		}
		if osWriters[path] == nil && path != "internal/atomicdir" {
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "." {
			out = append(out, write{pkg, rel, "(imports)", fset.Position(imp.Pos()).Line, "dot import of " + path})
		}
		names[name] = path
	}
	if len(names) == 0 {
		return out
	}
	for _, decl := range f.Decls {
		fn := "(package level)" // a var holding os.WriteFile, a func literal
		if fd, ok := decl.(*ast.FuncDecl); ok {
			fn = funcName(fd)
		}
		checked := map[*ast.SelectorExpr]string{} // OpenFile calls, judged by their flags
		ast.Inspect(decl, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, path := watched(call.Fun, names); sel != nil && path == "os" && sel.Sel.Name == "OpenFile" {
					checked[sel] = openFlags(call, names)
				}
			}
			sel, path := watched(n, names)
			if sel == nil {
				return true
			}
			name := sel.Sel.Name
			what := ""
			switch {
			case path == "os" && name == "OpenFile":
				what = "os.OpenFile"
				if judged, ok := checked[sel]; ok {
					if judged == "" {
						return true
					}
					what += " " + judged
				} else {
					what += " as a value, its flags unknown"
				}
			case path == "internal/atomicdir" && atomicdirWriters[name],
				path != "internal/atomicdir" && osWriters[path][name]:
				what = path + "." + name
			default:
				return true
			}
			out = append(out, write{pkg, rel, fn, fset.Position(sel.Pos()).Line, what})
			return true
		})
	}
	return out
}

// watched returns n as a selector on a watched package, and that package.
func watched(n ast.Node, names map[string]string) (*ast.SelectorExpr, string) {
	sel, ok := n.(*ast.SelectorExpr)
	if !ok {
		return nil, ""
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return nil, ""
	}
	path, ok := names[id.Name]
	if !ok {
		return nil, ""
	}
	return sel, path
}

// openFlags judges an os.OpenFile call by its flags: "" when they only
// read, otherwise why it counts as a write.
func openFlags(call *ast.CallExpr, names map[string]string) string {
	if len(call.Args) < 2 {
		return "with flags not known to only read"
	}
	verdict := ""
	ast.Inspect(call.Args[1], func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if _, path := watched(n, names); path == "os" || path == "syscall" || path == "golang.org/x/sys/unix" {
				switch {
				case writeFlags[n.Sel.Name]:
					verdict = "with write flags"
				case !readFlags[n.Sel.Name] && verdict == "":
					verdict = "with flags not known to only read"
				}
				return false
			}
			if verdict == "" {
				verdict = "with flags not known to only read"
			}
			return false
		case *ast.Ident, *ast.CallExpr:
			if verdict == "" {
				verdict = "with flags not known to only read"
			}
			return false
		}
		return true
	})
	return verdict
}

// funcName names a function as the allowlist does: F, or T.M for a
// method (pointer receiver or not).
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if idx, ok := typ.(*ast.IndexExpr); ok {
		typ = idx.X
	}
	if idx, ok := typ.(*ast.IndexListExpr); ok {
		typ = idx.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// moduleRoot finds go.mod above the test's directory and returns its
// directory and the module path.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(rest), `"`)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}
