// Package runner is what every operation on a running cluster runs on:
// the leaf rotation (rotate), the staged CA rotation, member add and
// remove, and certs revoke each hold a Runner and add only their own
// steps.
//
// A Runner holds the shared half of an operation's options (Config: the
// spec, dry run, progress output, clock, timeouts), the stamped progress
// log (Logger), the spec expanded once (pki.Inventory), the etcd client
// (Cluster: health, leader moves, serving serials, the membership API,
// proofs on the wire) and the journal (State, with every operation's
// part of it). Begin takes the PKI directory's lock and loads the
// journal.
//
// What it does for the operations: render and run the deploy and restart
// commands (templates.go, command.go), deploy a Rollout's nodes and
// update its clients (steps.go), prove renewed certificates in effect
// without a restart (prove.go), roll restarts gated on health with one
// leader hand-off (roll.go), record what each member was started with
// (started.go), keep the CRL fresh (crl.go), write the metrics textfile
// (metrics.go, metrics_crl.go), and the journaled revocation engine
// (revoke*.go), which certs revoke and member remove both run.
//
// Progress is reported as typed events (report.go): an Event carries the
// operation, step, target, serial, outcome and duration besides the
// exact line the CLI prints (Message). A Logger emits them to the run's
// Reporter; TextReporter prints each as the stamped line it has always
// been, and a dry run's plan unstamped.
//
// It writes the PKI directory only through package issue; the only file
// it writes itself is the operator's --metrics-file, outside the PKI
// directory (internal/layering's test holds it to that). It imports no
// operation: imports point cmd -> operations -> runner -> issue -> pki.
package runner
