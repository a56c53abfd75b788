package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"golang.org/x/net/publicsuffix"
)

// The validators below are shared by the spec and by `etcdpki issue`, so a
// name, a DNS name or a subject is accepted or refused the same way
// wherever it comes from.

var plainName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)

// CheckName reports whether v can name a cluster, node or client: it
// becomes a directory and file name in the PKI tree and a certificate's
// subject, so only letters, digits, '-', '.' and '_', starting and ending
// with a letter or digit, at most 63 characters.
func CheckName(v string) error {
	if !plainName.MatchString(v) {
		return fmt.Errorf("%q is not a valid name (letters, digits, '-', '.', '_'; starts and ends with a letter or digit; at most 63)", v)
	}
	return nil
}

// ReservedNames are names no node, client or issued certificate may take:
// "ca" would put a ca.crt/ca.key over a bundle's CA file; the catalogue's
// kind names (and their file base names) would make `certs renew NAME`
// ambiguous between one owner and every node. ca's TestCatalogueNamesReserved
// keeps this list in step with the catalogue.
var ReservedNames = []string{
	"ca",
	"etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client", "client",
	"server", "peer", "healthcheck-client",
}

// CheckNotReserved refuses the names in ReservedNames.
func CheckNotReserved(v string) error {
	if slices.Contains(ReservedNames, strings.ToLower(v)) {
		return fmt.Errorf("%q is reserved (it names the CA or a kind of certificate: %s)", v, strings.Join(ReservedNames, ", "))
	}
	return nil
}

var dnsName = regexp.MustCompile(`^(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

// CheckDNSName reports whether v is a DNS name a certificate can carry:
// ASCII labels of letters, digits and '-', an optional leading "*.", at
// most 253 characters. Anything else (spaces, e-mail addresses, URLs,
// non-ASCII names) is refused here rather than passed to cfssl, which
// turns some into other SAN types and panics on others.
//
// A name whose last label is all digits is an IP address written where a
// DNS name belongs (1.2.3.4 would become a DNS SAN no client ever
// matches), and a wildcard must sit below a registrable domain: "*.com"
// or "*.co.uk" would claim every name under a public suffix.
func CheckDNSName(v string) error {
	if len(v) > 253 || !dnsName.MatchString(v) {
		return fmt.Errorf("%q is not a DNS name", v)
	}
	if last := v[strings.LastIndex(v, ".")+1:]; strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("%q is not a DNS name: its last label is a number (an IP address goes in ips, or --ip)", v)
	}
	if rest, ok := strings.CutPrefix(v, "*."); ok {
		if suffix, _ := publicsuffix.PublicSuffix(strings.ToLower(rest)); suffix == strings.ToLower(rest) {
			return fmt.Errorf("%q is a wildcard over the public suffix %q; a wildcard must sit below a domain of your own (*.etcd.example.com)", v, rest)
		}
	}
	return nil
}

// CheckIP reports whether ip can be a certificate's IP SAN and a member's
// address: not unspecified (0.0.0.0, ::) and not multicast.
func CheckIP(ip net.IP) error {
	if ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("%s cannot be a member's address or a certificate SAN", ip)
	}
	return nil
}

// MaxCommonNameLen is X.509's upper bound for a commonName (RFC 5280, ub-common-name).
const MaxCommonNameLen = 64

// CheckSubjectValue reports whether v can be a commonName or organization:
// printable characters only (no control characters or newlines, which
// would forge lines in logs and listings), no leading or trailing space,
// at most 64 bytes.
func CheckSubjectValue(v string) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case len(v) > MaxCommonNameLen:
		return fmt.Errorf("%q is longer than %d bytes", v, MaxCommonNameLen)
	case !utf8.ValidString(v):
		return fmt.Errorf("%q is not valid UTF-8", v)
	case strings.TrimSpace(v) != v:
		return fmt.Errorf("%q starts or ends with a space", v)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%q holds a non-printable character", v)
		}
	}
	return nil
}

// checkURL validates an advertised client or peer URL: https, a host, a
// port in 1-65535, and nothing etcd would ignore or misread (userinfo, a
// query, a fragment, a path). It returns the host and the URL in the one
// form written into etcd.conf.yml and the apiserver's flags: scheme in
// lower case, no trailing "/", the port in plain decimal, an IP in its
// canonical form, a DNS name in lower case. etcd refuses
// "https://10.0.0.1:2379/" ("URL must not contain a path"), so the
// written form is checked with etcd's own parser (types.NewURLs) as well.
func checkURL(v string) (host, norm string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%q: %s (want https://HOST:PORT, like https://10.0.0.11:2379)", v, why)
	}
	u, perr := url.Parse(v)
	switch {
	case perr != nil:
		return bad("not a URL")
	case u.Scheme != "https":
		return bad("not an https URL")
	case u.Opaque != "":
		return bad("not an https URL")
	case u.User != nil:
		return bad("has user info")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("has a query")
	case u.Fragment != "" || strings.Contains(v, "#"):
		return bad("has a fragment")
	case u.Path != "" && u.Path != "/":
		return bad("has a path")
	case u.Hostname() == "":
		return bad("has no host")
	case u.Port() == "":
		return bad("has no port")
	}
	port, aerr := strconv.Atoi(u.Port())
	if aerr != nil || port < 1 || port > 65535 {
		return bad("port out of range 1-65535")
	}
	host = u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil && !strings.Contains(host, ":") {
			ip = ip4
		}
		host = ip.String()
	} else {
		if err := CheckDNSName(host); err != nil {
			return bad("host is neither an IP address nor a DNS name")
		}
		host = strings.ToLower(host)
	}
	norm = "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	if _, err := types.NewURLs([]string{norm}); err != nil {
		return bad("etcd would refuse it: " + err.Error())
	}
	return host, norm, nil
}

// hostInSANs reports whether host (an IP or DNS name) is covered by sans,
// as a TLS client checking the certificate would decide.
func hostInSANs(host string, sans []string) bool {
	if ip := net.ParseIP(host); ip != nil {
		for _, s := range sans {
			if sip := net.ParseIP(s); sip != nil && sip.Equal(ip) {
				return true
			}
		}
		return false
	}
	host = strings.ToLower(host)
	for _, s := range sans {
		s = strings.ToLower(s)
		if s == host {
			return true
		}
		if rest, ok := strings.CutPrefix(s, "*."); ok {
			if _, after, found := strings.Cut(host, "."); found && after == rest {
				return true
			}
		}
	}
	return false
}
