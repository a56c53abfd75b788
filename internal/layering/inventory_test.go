package layering

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// expanders may expand a spec into an inventory (pki.New): pki itself,
// cmd, which builds the inventory once per command and hands it to
// the operation, and the controller and the agent, whose spec is an
// EtcdCluster they read (and read again when it changes). Everything below cmd takes the inventory it is given,
// so that one command's run sees one expansion of one spec (the watcher
// reloads through a function cmd hands it). internal/testharness is
// skipped by eachFile: only tests import it.
func expander(pkg string) bool {
	top, _, _ := strings.Cut(pkg, "/")
	return top == "cmd" || top == "pki"
}

// TestOnlyCmdExpandsTheSpec fails on a use of pki.New (a call or a
// function value) in a production package other than cmd and pki.
func TestOnlyCmdExpandsTheSpec(t *testing.T) {
	root, module := moduleRoot(t)
	found := 0
	eachFile(t, root, func(fset *token.FileSet, rel string, f *ast.File) {
		pkg := rel[:max(strings.LastIndex(rel, "/"), 0)]
		uses := pkiNewUses(fset, f, module)
		found += len(uses)
		if expander(pkg) {
			return
		}
		for _, line := range uses {
			t.Errorf("%s:%d uses pki.New: take the *pki.Inventory cmd built instead", rel, line)
		}
	})
	if found == 0 {
		t.Fatal("no pki.New found anywhere, not even in cmd: the walk reads nothing")
	}
}

// pkiNewUses returns the lines where f refers to pki.New, the import
// named through its alias; a dot import of pki counts at the import.
func pkiNewUses(fset *token.FileSet, f *ast.File, module string) []int {
	name := ""
	var lines []int
	for _, imp := range f.Imports {
		if path, _ := strconv.Unquote(imp.Path.Value); path != module+"/pki" {
			continue
		}
		name = "pki"
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "." {
			lines = append(lines, fset.Position(imp.Pos()).Line)
		}
	}
	if name == "" || name == "." || name == "_" {
		return lines
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "New" {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == name {
			lines = append(lines, fset.Position(sel.Pos()).Line)
		}
		return true
	})
	return lines
}

// TestTheExpansionCheckSeesACall proves pkiNewUses finds a call through
// an alias and a function value, and not another package's New.
func TestTheExpansionCheckSeesACall(t *testing.T) {
	src := `package rotate

import (
	inv "example.com/m/pki"
	"example.com/m/runner"
)

func a(s *cluster.Spec) { _ = inv.New(s) }
func b() { f := inv.New; _ = f }
func c() { _ = runner.New(nil, runner.Config{}, nil) }
func d(i *inv.Inventory) { _ = i.Spec }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "rotate/x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := pkiNewUses(fset, f, "example.com/m")
	if len(got) != 2 || got[0] != 8 || got[1] != 9 {
		t.Errorf("found pki.New at lines %v, want [8 9]", got)
	}
	if expander("rotate") || expander("runner") || !expander("cmd/etcdpki") || !expander("pki") {
		t.Error("expander: only cmd and pki may expand a spec")
	}
}
