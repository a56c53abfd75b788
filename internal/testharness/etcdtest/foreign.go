package etcdtest

import "crypto/tls"

// UseAPIServerTLS makes readiness checks, Client and every other use of
// the apiserver's view present cfg instead of the bundle etcdpki wrote:
// for members running on certificates another tool made (kubeadm's, for
// adopt's tests), which trust another CA.
func (c *Cluster) UseAPIServerTLS(cfg *tls.Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiTLS = cfg
}
