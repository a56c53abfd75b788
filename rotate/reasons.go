package rotate

import (
	"fmt"
	"strconv"
	"strings"
)

// reasonEnv is the restart reason when a member's etcd.env changed: etcd
// reads its variables, the CRL files among them, only at start.
const reasonEnv = "etcd.env changed (it names the CRL; etcd reads it only at start)"

// Reasons a member is restarted, as the plan and the progress lines say
// them.
const (
	reasonCA     = "CA bundle changed"
	reasonConfig = "config changed"
	reasonAlways = "--restart=always"
)

// loadsLeavesAtHandshake reports whether an etcd of the given version
// (from its Status answer, "3.6.16") reads its certificate and key files
// at every new TLS handshake. etcd 3.2 made transport.TLSInfo set
// GetCertificate and GetClientCertificate to re-read them; before it,
// etcd read them once at start, so only a restart puts a renewed leaf
// into effect. A version that does not parse is assumed modern: every
// etcd that answers the v3 Status RPC with a version string this tool
// can talk to is 3.x.
func loadsLeavesAtHandshake(version string) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return true
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return major > 3 || major == 3 && minor >= 2
}

// reasonOldEtcd is the restart reason for an etcd older than 3.2.
func reasonOldEtcd(version string) string {
	return fmt.Sprintf("etcd %s reads its certificates only at start (before 3.2)", version)
}
