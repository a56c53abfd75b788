// Package issue is the only writer of a cluster's PKI: it issues the leaf
// certificates of the inventory (package pki) from the CA (package ca)
// and writes the node and client bundles and the configuration files
// that use them. What is on disk and what it should say is package pki's
// (the read model): issue reads pairs, the CA and the CA-rotation state
// through it, and writes the configuration pki renders.
//
// It owns init (init.go), the write plan and its checks on the PKI
// directory (store.go), creating or loading the CA to sign with
// (authority.go), the checks on existing pairs before a write (inspect.go),
// renewing (renew.go), the one backup writer every backup goes through
// (backup.go), what `issue` may write into (owned.go), the modes every
// writer re-tightens (modes.go), the recovery from expired
// certificates or an expired CA (reissue.go), one-off certificates
// outside the spec (one.go), the CA rotation's writes (castore.go) and
// the live operations' journal (journal.go): rotate decides when, issue
// writes. Every entry point takes the *pki.Inventory
// its command expanded. It imports pki, ca and cluster; rotate and cmd
// import it, verify does not.
package issue
