package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/etcdpki/etcdpki/internal/input"
	"go.yaml.in/yaml/v3"
)

// Error is a spec problem, located at a file, line and field where known.
// Callers treat it as bad input (exit code 2).
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// ExitCode is input.ExitCode: a spec problem is bad input.
func (e *Error) ExitCode() int { return input.ExitCode }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("spec")
	if e.File != "" {
		b.WriteString(" " + e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
	} else if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Options adjust a spec as it is loaded.
type Options struct {
	// PKIDir overrides the spec's pkiDir (the --dir flag). Relative to the
	// working directory.
	PKIDir string
}

// File is the spec's YAML schema, as an operator writes it. Durations are
// strings so "365d" works. It is exported so that tools (and the test
// harness) can write specs that Parse reads back; empty fields keep the
// defaults.
type File struct {
	Name    string       `yaml:"name,omitempty"`
	PKIDir  string       `yaml:"pkiDir,omitempty"`
	Local   bool         `yaml:"local,omitempty"`
	CA      FileCA       `yaml:"ca,omitempty"`
	Certs   FileCerts    `yaml:"certs,omitempty"`
	Nodes   []FileNode   `yaml:"nodes"`
	Clients []FileClient `yaml:"clients,omitempty"`
}

// FileCA is the spec's ca section.
type FileCA struct {
	CommonName   string `yaml:"commonName,omitempty"`
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty"`
}

// FileCerts is the spec's certs section: settings for every leaf.
type FileCerts struct {
	KeyAlgorithm string `yaml:"keyAlgorithm,omitempty"`
	KeySize      int    `yaml:"keySize,omitempty"`
	Validity     string `yaml:"validity,omitempty"`
	RenewBefore  string `yaml:"renewBefore,omitempty"`
}

// FileNode is one entry of the spec's nodes section.
type FileNode struct {
	Name                string   `yaml:"name"`
	IPs                 []string `yaml:"ips"`
	DNS                 []string `yaml:"dns,omitempty"`
	ClientPort          int      `yaml:"clientPort,omitempty"`
	PeerPort            int      `yaml:"peerPort,omitempty"`
	ClientURLs          []string `yaml:"clientURLs,omitempty"`
	PeerURLs            []string `yaml:"peerURLs,omitempty"`
	Dir                 string   `yaml:"dir,omitempty"`
	DataDir             string   `yaml:"dataDir,omitempty"`
	InitialClusterState string   `yaml:"initialClusterState,omitempty"`
	Deploy              string   `yaml:"deploy,omitempty"`
	Restart             string   `yaml:"restart,omitempty"`
}

// FileClient is one entry of the spec's clients section.
type FileClient struct {
	Name         string   `yaml:"name"`
	CommonName   string   `yaml:"commonName,omitempty"`
	Organization []string `yaml:"organization,omitempty"`
	Dir          string   `yaml:"dir,omitempty"`
	Deploy       string   `yaml:"deploy,omitempty"`
	Restart      string   `yaml:"restart,omitempty"`
}

// MaxSpecSize caps how much of a spec file is read: a real spec is a few
// kilobytes, and a path that names /dev/zero or a huge file by mistake
// must fail at once instead of filling memory.
const MaxSpecSize = 1 << 20

// Load reads and validates the spec file at path. It must be a regular
// file (a FIFO would block forever, a device never end) of at most
// MaxSpecSize bytes.
func Load(path string, o Options) (*Spec, error) {
	data, err := readSpec(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, o)
}

func readSpec(path string) ([]byte, error) {
	// Stat before opening: opening a FIFO for reading blocks until a
	// writer comes.
	info, err := os.Stat(path)
	if err == nil && !info.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: fmt.Sprintf("not a regular file (%s)", fileType(info.Mode()))}
	}
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{File: path, Msg: "file does not exist"}
		}
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}
	}
	defer f.Close()
	// Check again on what was opened: the path may have been swapped.
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: "not a regular file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))}
	}
	if len(data) > MaxSpecSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d KiB; is this the cluster spec?", MaxSpecSize>>10)}
	}
	return data, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// Parse validates spec YAML. file names it in errors and anchors relative
// paths; it may be "".
func Parse(data []byte, file string, o Options) (*Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "file is empty"}
	}
	if err := checkWholeNumbers(file, doc.Content[0], ""); err != nil {
		return nil, err
	}
	var r File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, yamlError(file, err)
	}
	base := "."
	if file != "" {
		base = filepath.Dir(file)
	}
	p := &parser{file: file, root: doc.Content[0], base: base}
	return p.build(&r, o)
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns yaml.v3's multi-line errors into one located line.
func yamlError(file string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	first := strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
	if m := yamlLine.FindStringSubmatch(first); m != nil {
		line, _ := strconv.Atoi(m[1])
		text := m[2]
		if f := regexp.MustCompile(`field (\S+) not found in type cluster\.(\w+)`).FindStringSubmatch(text); f != nil {
			text = fmt.Sprintf("unknown key %q (in %s)", f[1], section(f[2]))
		}
		text = strings.ReplaceAll(text, "cluster.File", "spec")
		return &Error{File: file, Line: line, Msg: text}
	}
	return &Error{File: file, Msg: first}
}

func section(typ string) string {
	switch typ {
	case "FileCA":
		return "ca"
	case "FileCerts":
		return "certs"
	case "FileNode":
		return "a node"
	case "FileClient":
		return "a client"
	}
	return "the top level"
}

type parser struct {
	file string
	root *yaml.Node
	base string
}

// line finds the line of a field by its path of mapping keys and sequence
// indexes, falling back to the nearest enclosing node that exists.
func (p *parser) line(path ...any) int {
	n := p.root
	line := n.Line
	for _, step := range path {
		switch s := step.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || s >= len(n.Content) {
				return line
			}
			n = n.Content[s]
			line = n.Line
		}
	}
	return line
}

func (p *parser) errf(field string, path []any, format string, args ...any) error {
	return &Error{File: p.file, Line: p.line(path...), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// intKeys are the spec's integer fields. yaml.v3 silently truncates a
// float into an int ("peerPort: 2380.5" became 2380), so they are checked
// on the YAML tree before decoding.
var intKeys = map[string]bool{"clientPort": true, "peerPort": true, "keySize": true}

// checkWholeNumbers refuses a non-integer scalar under an integer key.
func checkWholeNumbers(file string, n *yaml.Node, path string) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			field := k.Value
			if path != "" {
				field = path + "." + k.Value
			}
			if intKeys[k.Value] && v.Kind == yaml.ScalarNode && v.Tag != "!!int" && v.Tag != "!!null" {
				return &Error{File: file, Line: v.Line, Field: field, Msg: fmt.Sprintf("%q is not a whole number", v.Value)}
			}
			if err := checkWholeNumbers(file, v, field); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := checkWholeNumbers(file, c, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *parser) build(r *File, o Options) (*Spec, error) {
	s := &Spec{Name: r.Name, Local: r.Local, File: p.file}
	if s.Name == "" {
		s.Name = "etcd"
	}
	if err := CheckName(s.Name); err != nil {
		return nil, p.errf("name", []any{"name"}, "%v", err)
	}
	switch {
	case o.PKIDir != "":
		s.PKIDir = o.PKIDir
	case r.PKIDir != "":
		s.PKIDir = p.path(r.PKIDir)
	default:
		s.PKIDir = DefaultPKIDir
	}
	abs, err := filepath.Abs(s.PKIDir)
	if err != nil {
		return nil, p.errf("pkiDir", []any{"pkiDir"}, "%v", err)
	}
	s.PKIDir = abs

	var err2 error
	s.CA.CommonName = r.CA.CommonName
	if s.CA.CommonName == "" {
		s.CA.CommonName = DefaultCACommonName
	}
	if err := CheckSubjectValue(s.CA.CommonName); err != nil {
		return nil, p.errf("ca.commonName", []any{"ca", "commonName"}, "%v", err)
	}
	if s.CA.Key, err2 = p.key("ca", r.CA.KeyAlgorithm, r.CA.KeySize, KeySpec{AlgECDSA, 256}); err2 != nil {
		return nil, err2
	}
	if s.CA.Validity, err2 = p.duration("ca.validity", []any{"ca", "validity"}, r.CA.Validity, DefaultCAValidity); err2 != nil {
		return nil, err2
	}
	if s.Leaf.Key, err2 = p.key("certs", r.Certs.KeyAlgorithm, r.Certs.KeySize, s.CA.Key); err2 != nil {
		return nil, err2
	}
	if s.Leaf.Validity, err2 = p.duration("certs.validity", []any{"certs", "validity"}, r.Certs.Validity, DefaultLeafValidity); err2 != nil {
		return nil, err2
	}
	if s.Leaf.RenewBefore, err2 = p.duration("certs.renewBefore", []any{"certs", "renewBefore"}, r.Certs.RenewBefore, min(DefaultRenewBefore, s.Leaf.Validity/3)); err2 != nil {
		return nil, err2
	}
	// Certificates count in whole seconds: anything shorter would be
	// expired when issued. Seconds stay allowed, for tests of expiry.
	if s.CA.Validity < time.Second {
		return nil, p.errf("ca.validity", []any{"ca", "validity"}, "%s is shorter than a second", s.CA.Validity)
	}
	if s.Leaf.Validity < time.Second {
		return nil, p.errf("certs.validity", []any{"certs", "validity"}, "%s is shorter than a second", s.Leaf.Validity)
	}
	if s.Leaf.Validity > s.CA.Validity {
		return nil, p.errf("certs.validity", []any{"certs", "validity"}, "%s is longer than the CA's validity (%s): leaves would outlive their CA", FormatDuration(s.Leaf.Validity), FormatDuration(s.CA.Validity))
	}
	if s.Leaf.RenewBefore >= s.Leaf.Validity {
		return nil, p.errf("certs.renewBefore", []any{"certs", "renewBefore"}, "%s is not shorter than the leaf validity (%s): every certificate would be due at once, forever", FormatDuration(s.Leaf.RenewBefore), FormatDuration(s.Leaf.Validity))
	}

	if len(r.Nodes) == 0 {
		return nil, p.errf("nodes", []any{"nodes"}, "no nodes: an etcd cluster needs at least one member")
	}
	seen := map[string]int{}
	// listen maps "IP:port" to the node listening there. The 127.0.0.1
	// listener a non-local member gets for its own healthchecks is on its
	// own host's loopback and is left out; every address the spec names
	// is in, so two members can never claim one address and port.
	listen := map[string]string{}
	advertised := map[string]string{}
	for i, rn := range r.Nodes {
		n, err := p.node(s, i, rn)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[n.Name]; dup {
			return nil, p.errf(fmt.Sprintf("nodes[%d].name", i), []any{"nodes", i, "name"}, "duplicate node name %q (first at nodes[%d])", n.Name, prev)
		}
		seen[n.Name] = i
		for _, ip := range n.IPs {
			for _, port := range []int{n.ClientPort, n.PeerPort} {
				addr := net.JoinHostPort(ip.String(), fmt.Sprint(port))
				if other, clash := listen[addr]; clash {
					return nil, p.errf(fmt.Sprintf("nodes[%d]", i), []any{"nodes", i}, "node %q would listen on %s like node %q", n.Name, addr, other)
				}
				listen[addr] = n.Name
			}
		}
		for _, f := range []struct {
			field string
			urls  []string
		}{{"clientURLs", n.ClientURLs}, {"peerURLs", n.PeerURLs}} {
			for j, u := range f.urls {
				key := strings.TrimSuffix(strings.ToLower(u), "/")
				if other, dup := advertised[key]; dup {
					return nil, p.errf(fmt.Sprintf("nodes[%d].%s[%d]", i, f.field, j), []any{"nodes", i, f.field, j}, "%s is already advertised by node %q", u, other)
				}
				advertised[key] = n.Name
			}
		}
		s.Nodes = append(s.Nodes, n)
	}
	if err := p.clients(s, r.Clients); err != nil {
		return nil, err
	}
	return s, nil
}

func (p *parser) path(v string) string {
	if filepath.IsAbs(v) {
		return v
	}
	return filepath.Join(p.base, v)
}

func (p *parser) key(section, alg string, size int, def KeySpec) (KeySpec, error) {
	k := KeySpec{Algorithm: strings.ToLower(alg), Size: size}
	if k.Algorithm == "" {
		k.Algorithm = def.Algorithm
		if k.Size == 0 && def.Algorithm == k.Algorithm {
			k.Size = def.Size
		}
	}
	switch k.Algorithm {
	case AlgECDSA:
		if k.Size == 0 {
			k.Size = 256
		}
		if k.Size != 256 && k.Size != 384 {
			return k, p.errf(section+".keySize", []any{section, "keySize"}, "ECDSA key size %d is not supported (use 256 or 384)", k.Size)
		}
	case AlgRSA:
		if k.Size == 0 {
			k.Size = 2048
		}
		if k.Size != 2048 && k.Size != 3072 && k.Size != 4096 {
			return k, p.errf(section+".keySize", []any{section, "keySize"}, "RSA key size %d is not supported (use 2048, 3072 or 4096)", k.Size)
		}
	default:
		return k, p.errf(section+".keyAlgorithm", []any{section, "keyAlgorithm"}, "unknown key algorithm %q (use ecdsa or rsa)", alg)
	}
	return k, nil
}

func (p *parser) duration(field string, path []any, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return 0, p.errf(field, path, "%v", err)
	}
	return d, nil
}

// FormatDuration prints whole days as "365d" and anything else as Go does.
func FormatDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (p *parser) node(s *Spec, i int, rn FileNode) (Node, error) {
	at := func(f string) (string, []any) {
		return fmt.Sprintf("nodes[%d].%s", i, f), []any{"nodes", i, f}
	}
	n := Node{Name: rn.Name, ClientPort: rn.ClientPort, PeerPort: rn.PeerPort, Line: p.line("nodes", i),
		Deploy: rn.Deploy, Restart: rn.Restart, InitialClusterState: rn.InitialClusterState}
	if n.Name == "" {
		f, pa := at("name")
		return n, p.errf(f, pa, "missing")
	}
	if err := CheckName(n.Name); err != nil {
		f, pa := at("name")
		return n, p.errf(f, pa, "node name %v", err)
	}
	if err := CheckNotReserved(n.Name); err != nil {
		f, pa := at("name")
		return n, p.errf(f, pa, "node name %v", err)
	}
	if n.Name == ClientAPIServer || n.Name == ClientHealthcheck {
		f, pa := at("name")
		return n, p.errf(f, pa, "node name %q is the name of a built-in client", n.Name)
	}
	if len(rn.IPs) == 0 {
		f, pa := at("ips")
		return n, p.errf(f, pa, "node %q has no IP address", n.Name)
	}
	for j, v := range rn.IPs {
		ip := net.ParseIP(strings.TrimSpace(v))
		if ip == nil {
			return n, p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%q is not an IP address", v)
		}
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		if err := CheckIP(ip); err != nil {
			return n, p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%v", err)
		}
		for _, prev := range n.IPs {
			if prev.Equal(ip) {
				return n, p.errf(fmt.Sprintf("nodes[%d].ips[%d]", i, j), []any{"nodes", i, "ips", j}, "%s is listed twice", ip)
			}
		}
		n.IPs = append(n.IPs, ip)
	}
	for j, v := range rn.DNS {
		if err := CheckDNSName(v); err != nil {
			return n, p.errf(fmt.Sprintf("nodes[%d].dns[%d]", i, j), []any{"nodes", i, "dns", j}, "%v", err)
		}
		n.DNSNames = append(n.DNSNames, strings.ToLower(v))
	}
	if n.ClientPort == 0 {
		n.ClientPort = DefaultClientPort
	}
	if n.PeerPort == 0 {
		n.PeerPort = DefaultPeerPort
	}
	for _, pp := range []struct {
		f string
		v int
	}{{"clientPort", n.ClientPort}, {"peerPort", n.PeerPort}} {
		if pp.v < 1 || pp.v > 65535 {
			f, pa := at(pp.f)
			return n, p.errf(f, pa, "port %d is out of range 1-65535", pp.v)
		}
	}
	if n.ClientPort == n.PeerPort {
		f, pa := at("peerPort")
		return n, p.errf(f, pa, "peer port %d is the same as the client port", n.PeerPort)
	}
	var err error
	if n.ClientURLs, err = p.urls(n, i, "clientURLs", rn.ClientURLs, urlsFor(n.IPs[:1], n.ClientPort)); err != nil {
		return n, err
	}
	if n.PeerURLs, err = p.urls(n, i, "peerURLs", rn.PeerURLs, urlsFor(n.IPs[:1], n.PeerPort)); err != nil {
		return n, err
	}
	switch {
	case s.Local && rn.Dir != "":
		f, pa := at("dir")
		return n, p.errf(f, pa, "a local spec runs members from their bundles; remove dir or set local: false")
	case s.Local:
		n.Dir = filepath.Join(s.PKIDir, "nodes", n.Name)
	case rn.Dir == "":
		n.Dir = DefaultNodeDir
	case !filepath.IsAbs(rn.Dir):
		f, pa := at("dir")
		return n, p.errf(f, pa, "%q must be an absolute path on the node's host", rn.Dir)
	default:
		n.Dir = filepath.Clean(rn.Dir)
	}
	switch {
	case rn.DataDir != "" && s.Local:
		n.DataDir = p.path(rn.DataDir)
	case rn.DataDir != "":
		if !filepath.IsAbs(rn.DataDir) {
			f, pa := at("dataDir")
			return n, p.errf(f, pa, "%q must be an absolute path on the node's host", rn.DataDir)
		}
		n.DataDir = filepath.Clean(rn.DataDir)
	case s.Local:
		n.DataDir = filepath.Join(s.PKIDir, "data", n.Name)
	default:
		n.DataDir = DefaultDataDir
	}
	switch n.InitialClusterState {
	case "", "new", "existing":
	default:
		f, pa := at("initialClusterState")
		return n, p.errf(f, pa, "%q must be new or existing", n.InitialClusterState)
	}
	for _, t := range []struct{ f, v string }{{"deploy", n.Deploy}, {"restart", n.Restart}} {
		if err := CheckTemplate(t.v); err != nil {
			f, pa := at(t.f)
			return n, p.errf(f, pa, "%v", err)
		}
	}
	return n, nil
}

// urls checks a node's advertised URLs. Each host must be one of the
// node's certificate SANs: a client or peer dialling it would otherwise
// fail the handshake on a name mismatch.
func (p *parser) urls(n Node, i int, field string, in, def []string) ([]string, error) {
	if len(in) == 0 {
		return def, nil
	}
	sans := n.ServerSANs()
	for j, v := range in {
		host, err := checkURL(v)
		if err == nil && !hostInSANs(host, sans) {
			err = fmt.Errorf("%q: host %s is not among the node's certificate SANs (%s); add it to ips or dns", v, host, strings.Join(sans, ", "))
		}
		if err != nil {
			return nil, p.errf(fmt.Sprintf("nodes[%d].%s[%d]", i, field, j), []any{"nodes", i, field, j}, "%v", err)
		}
	}
	return in, nil
}

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

func (p *parser) clients(s *Spec, in []FileClient) error {
	api := Client{Name: ClientAPIServer, CommonName: "kube-apiserver-etcd-client", Dir: DefaultNodeDir}
	hc := Client{Name: ClientHealthcheck, CommonName: "kube-etcd-healthcheck-client"}
	var extra []Client
	seen := map[string]int{}
	for i, rc := range in {
		at := func(f string) (string, []any) { return fmt.Sprintf("clients[%d].%s", i, f), []any{"clients", i, f} }
		if err := CheckName(rc.Name); err != nil {
			f, pa := at("name")
			return p.errf(f, pa, "client name %v", err)
		}
		if err := CheckNotReserved(rc.Name); err != nil {
			f, pa := at("name")
			return p.errf(f, pa, "client name %v", err)
		}
		if _, clash := s.Node(rc.Name); clash {
			// `certs renew NAME` selects by owner: one name, one owner.
			f, pa := at("name")
			return p.errf(f, pa, "client name %q is also a node's name", rc.Name)
		}
		if rc.CommonName != "" {
			if err := CheckSubjectValue(rc.CommonName); err != nil {
				f, pa := at("commonName")
				return p.errf(f, pa, "%v", err)
			}
		}
		for j, o := range rc.Organization {
			if err := CheckSubjectValue(o); err != nil {
				return p.errf(fmt.Sprintf("clients[%d].organization[%d]", i, j), []any{"clients", i, "organization", j}, "%v", err)
			}
		}
		if prev, dup := seen[rc.Name]; dup {
			f, pa := at("name")
			return p.errf(f, pa, "duplicate client name %q (first at clients[%d])", rc.Name, prev)
		}
		seen[rc.Name] = i
		if rc.Dir != "" && !filepath.IsAbs(rc.Dir) {
			f, pa := at("dir")
			return p.errf(f, pa, "%q must be an absolute path on the client's host", rc.Dir)
		}
		for _, t := range []struct{ f, v string }{{"deploy", rc.Deploy}, {"restart", rc.Restart}} {
			if err := CheckTemplate(t.v); err != nil {
				f, pa := at(t.f)
				return p.errf(f, pa, "%v", err)
			}
		}
		switch rc.Name {
		case ClientAPIServer, ClientHealthcheck:
			// The well-known clients keep kubeadm's names so that
			// kube-apiserver and etcd's probes accept them unchanged.
			if rc.CommonName != "" || len(rc.Organization) > 0 {
				f, pa := at("commonName")
				return p.errf(f, pa, "the %s client's subject is fixed by kubeadm; only dir, deploy and restart can be set", rc.Name)
			}
			c := &api
			if rc.Name == ClientHealthcheck {
				if rc.Dir != "" || rc.Deploy != "" || rc.Restart != "" {
					f, pa := at("dir")
					return p.errf(f, pa, "the healthcheck client lives in each node's bundle; it has no dir, deploy or restart of its own")
				}
				c = &hc
			}
			if rc.Dir != "" {
				c.Dir = filepath.Clean(rc.Dir)
			}
			c.Deploy, c.Restart = rc.Deploy, rc.Restart
		default:
			c := Client{Name: rc.Name, CommonName: rc.CommonName, Organization: rc.Organization, Dir: rc.Dir, Deploy: rc.Deploy, Restart: rc.Restart}
			if c.CommonName == "" {
				c.CommonName = c.Name
			}
			if c.Dir == "" {
				c.Dir = DefaultNodeDir
			}
			extra = append(extra, c)
		}
	}
	if s.Local {
		api.Dir = filepath.Join(s.PKIDir, "apiserver")
		for i := range extra {
			extra[i].Dir = filepath.Join(s.PKIDir, "clients", extra[i].Name)
		}
	}
	s.Clients = append([]Client{api, hc}, extra...)
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
