package adopt

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/certx"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// fileNames are the certificate and key names another tool gives a
// kind of certificate, in the order they are looked for; NODE stands for
// the node's name. kubeadm: /etc/kubernetes/pki/etcd/server.crt (the
// directory given may be pki or pki/etcd). cfssl recipe (etcd's
// documentation): server.pem with server-key.pem. kubespray
// (/etc/ssl/etcd/ssl): member-NODE.pem serves both the client and the
// peer port, admin-NODE.pem is the node's own client certificate, and
// node-NODE.pem the one kube-apiserver uses.
var fileNames = map[string][][2]string{
	ca.KindServer.Name: {
		{"etcd/server.crt", "etcd/server.key"}, {"server.crt", "server.key"},
		{"server.pem", "server-key.pem"}, {"member-NODE.pem", "member-NODE-key.pem"},
	},
	ca.KindPeer.Name: {
		{"etcd/peer.crt", "etcd/peer.key"}, {"peer.crt", "peer.key"},
		{"peer.pem", "peer-key.pem"}, {"member-NODE.pem", "member-NODE-key.pem"},
	},
	ca.KindHealthcheck.Name: {
		{"etcd/healthcheck-client.crt", "etcd/healthcheck-client.key"}, {"healthcheck-client.crt", "healthcheck-client.key"},
		{"healthcheck-client.pem", "healthcheck-client-key.pem"}, {"admin-NODE.pem", "admin-NODE-key.pem"},
	},
	ca.KindAPIServer.Name: {
		{"apiserver-etcd-client.crt", "apiserver-etcd-client.key"}, {"client.pem", "client-key.pem"},
		{"apiserver-etcd-client.pem", "apiserver-etcd-client-key.pem"},
	},
}

// source is a pair found in an operator's directory for one target.
type source struct {
	target   pki.Target
	certPath string
	pair     pki.Pair
	cert     *x509.Certificate
}

// findPair looks for the target's pair in dir under the names other
// tools use. A certificate without its key, a key that does not match, a
// certificate that is not from the CA or not fit for the target's use is
// bad input naming the file: it is the operator's copy, and silently
// skipping it would record the certificate as held when they meant to
// hand over its key.
func findPair(dir string, t pki.Target, authority *ca.CA) (*source, error) {
	names := fileNames[t.Kind.Name]
	if t.Kind.PerClient {
		names = [][2]string{{t.Owner + ".crt", t.Owner + ".key"}, {t.Owner + ".pem", t.Owner + "-key.pem"}}
	}
	if t.Kind.Name == ca.KindAPIServer.Name {
		names = append(names, kubesprayNodeCerts(dir)...)
	}
	for _, n := range names {
		certPath := filepath.Join(dir, strings.ReplaceAll(n[0], "NODE", t.Owner))
		keyPath := filepath.Join(dir, strings.ReplaceAll(n[1], "NODE", t.Owner))
		certPEM, err := regular.ReadFile(certPath, regular.MaxPEM)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, pki.ReadError(certPath, err)
		}
		keyPEM, err := regular.ReadFile(keyPath, regular.MaxPEM)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, input.Errorf("%s: found for %s but its key %s is missing", certPath, t.ID, keyPath)
			}
			return nil, pki.ReadError(keyPath, err)
		}
		if err := checkPEM(certPath, certPEM, keyPath, keyPEM, false); err != nil {
			return nil, err
		}
		cert, err := ca.ParseCert(certPEM)
		if err != nil {
			return nil, input.Errorf("%s: %v", certPath, err)
		}
		key, err := certx.ParseKey(keyPEM)
		if err != nil {
			return nil, input.Errorf("%s: %v", keyPath, err)
		}
		if !certx.KeyMatches(cert, key.Public()) {
			return nil, input.Errorf("%s: key does not match certificate %s", keyPath, certPath)
		}
		if err := authority.Verify(cert, t.Usage(), validAt(cert, authority)); err != nil {
			return nil, input.Errorf("%s: not a %s certificate from the adopted CA: %v", certPath, t.Kind.Name, err)
		}
		return &source{target: t, certPath: certPath, pair: pki.Pair{Cert: certPEM, Key: keyPEM}, cert: cert}, nil
	}
	return nil, nil
}

// kubesprayNodeCerts are kubespray's node-NAME.pem pairs in dir: the
// client certificate kube-apiserver uses. Only one is taken: with more,
// which one the apiserver uses is not ours to guess.
func kubesprayNodeCerts(dir string) [][2]string {
	m, _ := filepath.Glob(filepath.Join(dir, "node-*.pem"))
	var out [][2]string
	for _, p := range m {
		if !strings.HasSuffix(p, "-key.pem") {
			b := filepath.Base(p)
			out = append(out, [2]string{b, strings.TrimSuffix(b, ".pem") + "-key.pem"})
		}
	}
	if len(out) != 1 {
		return nil
	}
	return out
}

// checkDir refuses a directory adopt cannot read.
func checkDir(flag, dir string) error {
	if _, err := regular.ReadDir(dir); err != nil {
		return input.Errorf("%s%s: %v", flag, dir, pathx.UnwrapPath(err))
	}
	return nil
}

// checkPEM refuses files that hold more than they should before a byte of
// them is copied into the PKI: a private key in a certificate file would
// travel with every bundle the certificate goes into (a CA file holding
// the CA key would hand it to every host), more than one certificate in
// the CA file would make every bundle trust them all, and a key file
// holding more than its key leaves the choice of key to whichever TLS
// library reads it.
func checkPEM(certPath string, certPEM []byte, keyPath string, keyPEM []byte, oneCert bool) error {
	if err := pki.CertsOnly(certPath, certPEM); err != nil {
		return err
	}
	certs := 0
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certs++
		}
	}
	if oneCert && certs > 1 {
		return input.Errorf("%s: holds %d certificates; adopt takes one CA (finish the other tool's CA rotation first)", certPath, certs)
	}
	return pki.OneKey(keyPath, keyPEM)
}
