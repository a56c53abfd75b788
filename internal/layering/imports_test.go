package layering

import (
	"go/ast"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// operations are the packages an operator names a command after: each
// is one operation on the cluster, run by the shared runner. They never
// import each other, so one operation's change cannot reach another's
// behaviour except through the runner, where it is visible as shared.
var operations = set("rotate", "carotate", "member", "revoke", "adopt", "verify", "controller", "agent", "export", "request", "auth")

// layer ranks the module's packages by their top directory: a package
// may import only packages of a lower layer (internal/* may also import
// each other). The chain is cmd -> operations -> kube -> runner -> issue
// -> pki -> ca -> api -> cluster -> internal, as docs/architecture.md
// draws it.
func layer(pkg string) (int, bool) {
	top, _, _ := strings.Cut(pkg, "/")
	switch {
	case top == "cmd" || top == "tools":
		return 9, true
	case operations[top]:
		return 8, true
	}
	rank, ok := map[string]int{"kube": 7, "runner": 6, "issue": 5, "pki": 4, "ca": 3, "api": 2, "cluster": 1, "internal": 0}[top]
	return rank, ok
}

// importViolation says why package from may not import package to (both
// relative to the module root), or "" if it may.
func importViolation(from, to string) string {
	fl, fok := layer(from)
	tl, tok := layer(to)
	switch {
	case !fok || !tok:
		return "" // a package outside the chain (docs): nothing to keep
	case fl == 0 && tl == 0:
		return ""
	case operations[strings.Split(from, "/")[0]] && operations[strings.Split(to, "/")[0]]:
		return "an operation imports another operation"
	case tl >= fl:
		return "imports point one way: cmd -> operations -> kube -> runner -> issue -> pki -> ca -> api -> cluster -> internal"
	}
	return ""
}

// TestImportsPointOneWay fails on a production import against the chain:
// an operation importing another, the runner importing an operation, or
// issue, pki, ca, cluster or internal importing the runner or an
// operation.
func TestImportsPointOneWay(t *testing.T) {
	root, module := moduleRoot(t)
	eachFile(t, root, func(_ *token.FileSet, rel string, f *ast.File) {
		from := rel[:max(strings.LastIndex(rel, "/"), 0)]
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			to, ok := strings.CutPrefix(path, module+"/")
			if !ok {
				continue
			}
			if why := importViolation(from, to); why != "" {
				t.Errorf("%s imports %s: %s", rel, to, why)
			}
		}
	})
}

// TestTheImportCheckSeesAViolation proves importViolation refuses each
// kind of wrong import and allows the chain's own.
func TestTheImportCheckSeesAViolation(t *testing.T) {
	for _, c := range []struct {
		from, to string
		bad      bool
	}{
		{"member", "revoke", true},
		{"rotate", "carotate", true},
		{"adopt", "verify", true},
		{"runner", "rotate", true},
		{"issue", "runner", true},
		{"pki", "issue", true},
		{"internal/probe", "member", true},
		{"cluster", "ca", true},
		{"api/v1alpha1", "pki", true},
		{"runner", "kube", true},
		{"agent", "controller", true},
		{"controller", "kube", false},
		{"kube", "runner", false},
		{"ca", "api/v1alpha1", false},
		{"cmd/etcdpki", "revoke", false},
		{"revoke", "runner", false},
		{"runner", "issue", false},
		{"issue", "pki", false},
		{"internal/probe", "internal/regular", false},
	} {
		if got := importViolation(c.from, c.to) != ""; got != c.bad {
			t.Errorf("%s -> %s: violation %v, want %v", c.from, c.to, got, c.bad)
		}
	}
}
