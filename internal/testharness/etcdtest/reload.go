package etcdtest

// ReloadAPIServerTLS builds the kube-apiserver's client configuration
// again from its bundle, as a restarted kube-apiserver would: a CA rotation
// changes the CAs it trusts, which a running client reads only at start.
// Call it between steps, not while another goroutine uses the cluster.
func (c *Cluster) ReloadAPIServerTLS() error {
	_, crt, key := APIServerFiles(c.Paths)
	cfg, err := TLSConfig(APIServerCA(c.Paths), crt, key)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.apiTLS = cfg
	c.mu.Unlock()
	return nil
}
