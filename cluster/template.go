package cluster

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// TemplateData is what deploy and restart templates can use. Each value
// is rendered shell-quoted (see RenderTemplate).
type TemplateData struct {
	Name       string // node or client name
	IP         string // node's first IP ("" for clients)
	Bundle     string // local bundle directory for this node or client
	Dir        string // where the files live on the host
	ConfigFile string // the node's etcd.conf.yml in the bundle
	DataDir    string
}

// CheckTemplate reports whether a command template parses and only uses
// TemplateData's fields.
func CheckTemplate(v string) error {
	_, err := RenderTemplate(v, TemplateData{})
	return err
}

// RenderTemplate renders a deploy or restart command template with d; ""
// renders as "". A field TemplateData does not have is an error.
//
// The command runs with sh -c, so every value is inserted shell-quoted: a
// path with a space stays one argument, and a dir holding "$(...)" or ";"
// is a literal name, never run. Values made only of characters the shell
// leaves alone (letters, digits, and @%+=:,./-_) are inserted as they are,
// so `root@{{.IP}}:{{.Dir}}/` still reads naturally. A template must
// therefore not put a value inside its own quotes.
func RenderTemplate(tmpl string, d TemplateData) (string, error) {
	if tmpl == "" {
		return "", nil
	}
	t, err := template.New("cmd").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("bad template: %v", strings.TrimPrefix(err.Error(), "template: cmd:"))
	}
	q := TemplateData{Name: ShellQuote(d.Name), IP: ShellQuote(d.IP), Bundle: ShellQuote(d.Bundle), Dir: ShellQuote(d.Dir),
		ConfigFile: ShellQuote(d.ConfigFile), DataDir: ShellQuote(d.DataDir)}
	var b bytes.Buffer
	if err := t.Execute(&b, q); err != nil {
		return "", fmt.Errorf("bad template: %v", strings.TrimPrefix(err.Error(), "template: cmd:"))
	}
	return b.String(), nil
}

var shellSafe = regexp.MustCompile(`^[a-zA-Z0-9@%+=:,./_-]+$`)

// ShellQuote returns v as one word for a POSIX shell: unchanged when it
// holds only characters the shell does not interpret, otherwise in single
// quotes, where a single quote is written as quote, backslash-quote,
// quote.
func ShellQuote(v string) string {
	if shellSafe.MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
