// Package issue writes a cluster's PKI: it issues the leaf certificates
// of the inventory (package pki) from the CA (package ca) and writes the
// node and client bundles and the configuration files that use them.
//
// It owns init (init.go), the write plan and its checks on the PKI
// directory (store.go), loading and checking the CA on disk
// (authority.go), checking existing pairs (inspect.go), listing and
// renewing (list.go, renew.go), the recovery from expired certificates
// or an expired CA (reissue.go), one-off certificates outside the spec
// (one.go, and owned.go: which directories it may write into), the one
// backup writer every backup goes through (backup.go), the modes every
// writer re-tightens (modes.go) and the etcd and kube-apiserver
// configuration files (config.go). It imports pki, ca and cluster; rotate and cmd import it.
package issue
