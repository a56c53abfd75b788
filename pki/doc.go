// Package pki is the read model of a cluster's PKI: it answers "what is,
// and what should be", and never writes. Package issue is the only writer.
//
// What should be: the inventory (inventory.go) expands a spec once, driven
// by the certificate catalogue in package ca, into every certificate and
// bundle with its paths on disk (kubeadm's file names, paths.go), subject
// and SANs; the configuration files that use them are rendered here too
// (config.go: etcd.conf.yml, the kube-apiserver flags, the kubeadm block).
// Every command expands the spec once and passes the *Inventory down.
//
// What is: the status of every certificate (status.go: List, Inspect),
// read through one pair reader (read.go: ReadPair reads a certificate and
// its key from one version of their store, so a reader racing a writer
// never sees a torn pair, and takes no lock), the CA and the next CA
// (LoadCA, LoadNextCA), the state of a CA rotation derived from the files
// (carotation.go: which CAs each bundle trusts, which CA signed each
// leaf), and modes looser than etcdpki keeps them (modes.go).
//
// Whether a change needs a restart is decided by package rotate (its
// plan), from what this package reports.
//
// It sits below issue and above ca and cluster: issue, rotate, verify
// and cmd import it; it imports ca, cluster and internal packages only.
package pki
