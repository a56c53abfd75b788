// Package carotate is etcdpki ca rotate: it replaces the etcd CA, stage
// by stage, with the cluster serving throughout. prepare writes the next
// CA (etcd-next); trust-both puts old CA + new CA into every bundle's
// ca.crt and restarts each member, proving it trusts both; reissue
// renews every leaf from the new CA and proves each in effect without a
// restart; finish drops the old CA from the bundles, restarts again and
// retires the old CA key to PKI/backup before the new CA takes PKI/etcd.
//
// Each stage is journaled (runner.CAJournal), so a run killed at any
// point resumes where the files and the journal say it stopped; --until
// stops after a stage. It runs on package runner (lock, journal, deploy,
// rolling restart, proofs) and imports no other operation.
//
// Files: carotate.go (Run, the stages in order, prepare), stages.go
// (trust-both and finish: write, deploy, prove, restart), reissue.go
// (every leaf from the new CA, proven without a restart), proof.go (the
// trust each member shows on the wire), retire.go (the order in which the
// old CA goes to backup/ and the new one into PKI/etcd), crl.go (the CRL
// re-signed by the new CA) and print.go (the dry run's plan).
package carotate
