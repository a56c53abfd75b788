package issue

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/pki"
)

// existingPair returns an existing valid pair, nil when there is none, or
// an input error when what is there can't be used. A pair that is merely
// due is reused: renewing is `certs renew`'s and rotate's job. A good pair
// whose files hold more than the pair (a key appended to the key file, a
// private key in the certificate file) comes back as it should be, with
// repair saying what was taken out: init writes it back repaired.
func existingPair(t pki.Target, a *ca.CA, now time.Time) (p pki.Pair, warn, repair string, err error) {
	certPEM, keyPEM, err := pki.ReadTargetPair(t)
	info, pc := pki.InspectPair(t, a, certPEM, keyPEM, err, 0, now)
	if pc.Repaired != nil {
		repair = pc.Err.Error()
		certPEM, keyPEM = pc.Repaired.Cert, pc.Repaired.Key
		info, pc = pki.InspectPair(t, a, certPEM, keyPEM, nil, 0, now)
	}
	switch info.Status {
	case pki.StatusMissing:
		return pki.Pair{}, "", "", nil
	case pki.StatusInvalid:
		return pki.Pair{}, "", "", pc.Err
	case pki.StatusExpired:
		return pki.Pair{}, "", "", input.Errorf("%s: expired on %s; run: etcdpki certs renew %s", t.CertPath(), info.Expires.Format(time.DateOnly), t.ID)
	}
	if pc.SANNote != "" {
		warn = fmt.Sprintf(" (SANs differ from the spec: %s; run: etcdpki certs renew %s)", pc.SANNote, t.ID)
	}
	return pki.Pair{Cert: certPEM, Key: keyPEM}, warn, repair, nil
}

// checkPairs is the last check before a store switches: every NAME.crt
// with a NAME.key beside it must match it.
func checkPairs(files map[string][]byte) error {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasSuffix(n, pki.CertExt) {
			continue
		}
		key, ok := files[strings.TrimSuffix(n, pki.CertExt)+pki.KeyExt]
		if !ok {
			continue
		}
		if err := ca.CheckPair(files[n], key); err != nil {
			return fmt.Errorf("pair %s: %w", n, err)
		}
	}
	return nil
}
