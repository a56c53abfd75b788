package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"go.yaml.in/yaml/v3"
)

// Options adjust a spec as it is loaded.
type Options struct {
	// PKIDir overrides the spec's pkiDir (the --dir flag). Relative to the
	// working directory.
	PKIDir string
	// CAKey overrides the spec's ca.key (init's --ca-key flag).
	CAKey string
}

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
	data, err := regular.ReadFile(path, MaxSpecSize)
	if refused, ok := errors.AsType[*regular.Error](err); ok {
		return nil, &Error{File: path, Msg: refused.Problem}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: path, Msg: "file does not exist"}
	}
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read: %v", pathx.UnwrapPath(err))}
	}
	return data, nil
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
	if err := oneDocument(file, data); err != nil {
		return nil, err
	}
	if err := checkTextTree(file, doc.Content[0], ""); err != nil {
		return nil, err
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

func (p *parser) build(r *File, o Options) (*Spec, error) {
	s := &Spec{Name: r.Name, Local: r.Local, File: p.file, Source: r}
	if s.Name == "" {
		s.Name = "etcd"
	}
	if err := CheckName(s.Name); err != nil {
		return nil, p.errf("name", []any{"name"}, "%v", err)
	}
	if err := p.pkiDir(s, r, o); err != nil {
		return nil, err
	}
	if err := p.certSettings(s, r, o); err != nil {
		return nil, err
	}
	if err := p.checkLifetimes(s, r); err != nil {
		return nil, err
	}
	if err := p.nodes(s, r.Nodes); err != nil {
		return nil, err
	}
	if err := p.clients(s, r.Clients); err != nil {
		return nil, err
	}
	if err := p.auth(s, r); err != nil {
		return nil, err
	}
	return s, nil
}

// pkiDir decides where the PKI lives: the flag, else the spec (relative
// to the spec file), else the default; always absolute.
func (p *parser) pkiDir(s *Spec, r *File, o Options) error {
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
		return p.errf("pkiDir", []any{"pkiDir"}, "%v", err)
	}
	s.PKIDir = abs
	if err := CheckText(abs); err != nil { // the working directory is part of it
		return p.errf("pkiDir", []any{"pkiDir"}, "%v", err)
	}
	return nil
}

// certSettings reads the CA's, the leaves' and the CRL's settings, each
// with its default, checking every value on its own.
func (p *parser) certSettings(s *Spec, r *File, o Options) error {
	var err2 error
	s.CA.CommonName = r.CA.CommonName
	if s.CA.CommonName == "" {
		s.CA.CommonName = DefaultCACommonName
	}
	if err := CheckSubjectValue(s.CA.CommonName); err != nil {
		return p.errf("ca.commonName", []any{"ca", "commonName"}, "%v", err)
	}
	if s.CA.Key, err2 = p.key("ca", r.CA.KeyAlgorithm, r.CA.KeySize, KeySpec{AlgECDSA, 256}); err2 != nil {
		return err2
	}
	if s.CA.Token, err2 = p.caKey(r.CA.Key, o.CAKey); err2 != nil {
		return err2
	}
	if s.CA.Validity, err2 = p.duration("ca.validity", []any{"ca", "validity"}, r.CA.Validity, DefaultCAValidity); err2 != nil {
		return err2
	}
	if s.Leaf.Key, err2 = p.key("certs", r.Certs.KeyAlgorithm, r.Certs.KeySize, s.CA.Key); err2 != nil {
		return err2
	}
	if s.Leaf.Validity, err2 = p.duration("certs.validity", []any{"certs", "validity"}, r.Certs.Validity, DefaultLeafValidity); err2 != nil {
		return err2
	}
	if s.Leaf.RenewBefore, err2 = p.duration("certs.renewBefore", []any{"certs", "renewBefore"}, r.Certs.RenewBefore, min(DefaultRenewBefore, s.Leaf.Validity/3)); err2 != nil {
		return err2
	}
	if s.CRL.Validity, err2 = p.duration("crl.validity", []any{"crl", "validity"}, r.CRL.Validity, DefaultCRLValidity); err2 != nil {
		return err2
	}
	return nil
}

// checkLifetimes rejects validities that cannot work: too short to be
// of use, or at odds with each other (a leaf outliving its CA, a leaf due
// for renewal from birth).
func (p *parser) checkLifetimes(s *Spec, r *File) error {
	if s.CRL.Validity < time.Minute {
		return p.errf("crl.validity", []any{"crl", "validity"}, "%s is shorter than a minute: the CRL would be stale before it reached the members", s.CRL.Validity)
	}
	// Certificates count in whole seconds: anything shorter would be
	// expired when issued. Seconds stay allowed, for tests of expiry.
	if s.CA.Validity < time.Second {
		return p.errf("ca.validity", []any{"ca", "validity"}, "%s is shorter than a second", s.CA.Validity)
	}
	if s.Leaf.Validity < time.Second {
		return p.errf("certs.validity", []any{"certs", "validity"}, "%s is shorter than a second", s.Leaf.Validity)
	}
	if s.Leaf.Validity > s.CA.Validity {
		// Cite the line that made the clash: certs.validity when the
		// spec wrote it, else ca.validity, which undercut the default.
		at, def := []any{"certs", "validity"}, ""
		if r.Certs.Validity == "" {
			at, def = []any{"ca", "validity"}, " (the default)"
		}
		return p.errf("certs.validity", at, "%s%s is longer than the CA's validity (%s): leaves would outlive their CA", FormatDuration(s.Leaf.Validity), def, FormatDuration(s.CA.Validity))
	}
	if s.Leaf.RenewBefore >= s.Leaf.Validity {
		return p.errf("certs.renewBefore", []any{"certs", "renewBefore"}, "%s is not shorter than the leaf validity (%s): every certificate would be due at once, forever", FormatDuration(s.Leaf.RenewBefore), FormatDuration(s.Leaf.Validity))
	}
	return nil
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
	case AlgECDSA, AlgRSA:
		if k.Size == 0 {
			k.Size = DefaultKeySize(k.Algorithm)
		}
		if !k.Supported() {
			return k, p.errf(section+".keySize", []any{section, "keySize"}, "%s key size %d is not supported (use %s)", strings.ToUpper(k.Algorithm), k.Size, KeySizesText(k.Algorithm))
		}
	default:
		return k, p.errf(section+".keyAlgorithm", []any{section, "keyAlgorithm"}, "unknown key algorithm %q (use ecdsa or rsa)", alg)
	}
	return k, nil
}

// caKey parses ca.key (or --ca-key, which wins): "" keeps the CA key in
// its file, a pkcs11: URI puts it in a token; anything else is refused
// rather than taken for a path the tool would never read.
func (p *parser) caKey(v, flag string) (*PKCS11URI, error) {
	field, path := "ca.key", []any{"ca", "key"}
	if flag != "" {
		v, field, path = flag, "--ca-key", nil
	}
	if v == "" {
		return nil, nil
	}
	if !IsPKCS11URI(v) {
		return nil, p.fieldErr(field, path, "%q is not a pkcs11: URI (a file CA key is always PKI/etcd/ca.key; leave ca.key out for it)", v)
	}
	u, err := ParsePKCS11URI(v, os.Getenv(AllowPINValueEnv) == "1")
	if err != nil {
		return nil, p.fieldErr(field, path, "pkcs11 URI: %v", err)
	}
	return u, nil
}

// fieldErr is errf for a field that may come from a flag (path nil),
// which has no line in the spec.
func (p *parser) fieldErr(field string, path []any, format string, args ...any) error {
	if path == nil {
		return &Error{File: p.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	return p.errf(field, path, format, args...)
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
