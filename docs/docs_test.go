// Package docs holds etcdpki's reference, one page per concern, and the
// tests that keep it and the README honest: the README stays a front
// page, every relative link lands on a file and heading that exist, and
// every test a page names as evidence is a test in the tree.
package docs

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxLines is the README's budget: a front page a newcomer reads in
// five minutes; the reference lives in this directory.
const readmeMaxLines = 250

// root is the repository root, seen from this package's directory (go
// test runs a package's tests in its own directory).
const root = ".."

func TestREADMEIsAFrontPage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, at most %d: move reference text into docs/", n, readmeMaxLines)
	}
}

// pages are the markdown files whose links are checked: the README and
// every page in docs/.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md pages found")
	}
	return append([]string{filepath.Join(root, "README.md")}, docs...)
}

func TestRelativeLinksResolve(t *testing.T) {
	anchors := map[string]map[string]bool{} // cleaned path -> heading anchors
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		a := headingAnchors(t, path)
		anchors[path] = a
		return a
	}
	checked := 0
	for _, page := range pages(t) {
		for _, l := range links(t, page) {
			target := l.target
			if isExternal(target) {
				continue
			}
			checked++
			file, anchor, _ := strings.Cut(target, "#")
			path := filepath.Clean(page)
			if file != "" {
				path = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: link %q: %v", page, l.line, target, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(path, ".md") {
				t.Errorf("%s:%d: link %q: an anchor into a file that is not markdown", page, l.line, target)
				continue
			}
			if !anchorsOf(path)[anchor] {
				t.Errorf("%s:%d: link %q: no heading in %s has the anchor #%s", page, l.line, target, path, anchor)
			}
		}
	}
	if checked == 0 {
		t.Error("no relative link found: the link parser is broken")
	}
}

// TestNamedTestsExist keeps the evidence real: every Test or Benchmark
// function and every testscript a page names exists.
func TestNamedTestsExist(t *testing.T) {
	funcs := testFuncs(t)
	scripts, err := filepath.Glob(filepath.Join(root, "cmd", "etcdpki", "testdata", "script", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	haveScript := map[string]bool{}
	for _, s := range scripts {
		haveScript[filepath.Base(s)] = true
	}
	name := regexp.MustCompile(`\b(?:Test|Benchmark)[A-Z][A-Za-z0-9_]*`)
	script := regexp.MustCompile(`\b[a-z_0-9]+\.txtar\b`)
	named := 0
	for _, page := range pages(t) {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, n := range name.FindAllString(line, -1) {
				named++
				if !funcs[n] {
					t.Errorf("%s:%d: names %s, which is no test function in the tree", page, i+1, n)
				}
			}
			for _, s := range script.FindAllString(line, -1) {
				named++
				if !haveScript[s] {
					t.Errorf("%s:%d: names the script %s, which is not in cmd/etcdpki/testdata/script", page, i+1, s)
				}
			}
		}
	}
	if named == 0 {
		t.Error("no test named in the docs: the promises page lost its evidence")
	}
}

// testFuncs lists the Test and Benchmark functions of every _test.go file
// under the repository root.
func testFuncs(t *testing.T) map[string]bool {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark)\w+)\(`)
	funcs := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "demo" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(data), -1) {
			funcs[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return funcs
}

type link struct {
	line   int
	target string
}

var (
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`^\s*\[[^\]]+\]:\s*(\S+)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
)

// links returns the link targets of a markdown file, outside code blocks
// and code spans.
func links(t *testing.T, path string) []link {
	t.Helper()
	var out []link
	eachProseLine(t, path, func(n int, line string) {
		if m := refLink.FindStringSubmatch(line); m != nil {
			out = append(out, link{n, m[1]})
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{n, strings.Trim(m[1], "<>")})
		}
	})
	return out
}

// headingAnchors returns the anchors GitHub gives a file's headings.
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	seen := map[string]int{}
	eachProseLine(t, path, func(_ int, line string) {
		text, ok := heading(line)
		if !ok {
			return
		}
		a := Anchor(text)
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	})
	return anchors
}

// heading returns an ATX heading's text.
func heading(line string) (string, bool) {
	level := len(line) - len(strings.TrimLeft(line, "#"))
	if level == 0 || level > 6 || len(line) == level || line[level] != ' ' {
		return "", false
	}
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(line[level:]), "#")), true
}

var mdLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// Anchor is the anchor GitHub gives a heading: the rendered text in lower
// case, without punctuation (hyphens and underscores stay), spaces made
// hyphens. A duplicate heading gets -1, -2, ... appended.
func Anchor(text string) string {
	text = mdLink.ReplaceAllString(text, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestAnchor(t *testing.T) {
	for text, want := range map[string]string{
		"Revocation: `etcdpki certs revoke`":      "revocation-etcdpki-certs-revoke",
		"The CA key in a token (PKCS#11)":         "the-ca-key-in-a-token-pkcs11",
		"Files switch atomically":                 "files-switch-atomically",
		"Runbook: a failed host":                  "runbook-a-failed-host",
		"Adopt — step by step":                    "adopt--step-by-step",
		"`member add` and [remove](member.md)":    "member-add-and-remove",
		"ca_rotate.txtar and TestCARotate_Stages": "ca_rotatetxtar-and-testcarotate_stages",
	} {
		if got := Anchor(text); got != want {
			t.Errorf("Anchor(%q) = %q, want %q", text, got, want)
		}
	}
}

// eachProseLine calls fn with every line outside fenced code blocks.
func eachProseLine(t *testing.T, path string, fn func(n int, line string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	fence := ""
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		case strings.HasPrefix(trimmed, "```"), strings.HasPrefix(trimmed, "~~~"):
			fence = trimmed[:3]
			continue
		}
		fn(n, line)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func isExternal(target string) bool {
	for _, p := range []string{"http://", "https://", "mailto:"} {
		if strings.HasPrefix(target, p) {
			return true
		}
	}
	return false
}
