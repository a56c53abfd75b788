package etcdtest

import "github.com/etcdpki/etcdpki/pki"

// Inventory is the cluster's spec as last written, expanded: what cmd
// hands every operation, built the way cmd builds it.
func (c *Cluster) Inventory() *pki.Inventory { return pki.New(c.Spec) }
