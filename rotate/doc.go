// Package rotate renews the etcd certificates that are due and puts them
// into effect without losing quorum: plan (what is due, which members
// need a restart, in which order), renew (atomic pair swaps, old pairs
// kept in PKI/backup), deploy (per-node command templates), then, per
// member, either a proof or a restart.
//
// etcd (3.2 and later) reads its certificate and key files at every new
// TLS handshake and an established connection is never verified again, so
// a renewed leaf needs no restart: in the default mode (RestartAuto) fresh
// handshakes prove it in effect instead (see prove.go), and no leader
// changes. Only what etcd reads once at start (its CA bundle, its
// etcd.conf.yml) or an explicit --restart=always makes a member restart.
// Restarts are rolled, gated on health — followers first, the leader
// last; as soon as the first member is back with its new certificate the
// leader hands leadership to it (MoveLeader, while the old leader still
// fully serves), so the old leader goes down as a plain follower and the
// cluster sees exactly one leader change (a leader that is the only member
// to restart hands off to a member not restarted, just before its own
// turn). Each member must serve its new certificate on both ports, answer
// a linearizable read and have caught up before the next one goes.
//
// Expired certificates (see expired.go and recover.go): probes present a
// client certificate minted in memory from the CA and accept an expired
// server certificate from it (each one a warning), so a cluster still
// serving on connections opened before expiry is rotated like any other,
// without restarts, and the run ends proving every port serves an
// unexpired certificate. A cluster with no quorum because its
// certificates (or CA) expired is refused with the command to run:
// Options.Recover renews (a new CA when it expired) and restarts every
// member at once.
//
// A run is safe from cron: an flock keeps two runs apart, and a journal
// in the PKI directory (see State) lets a run killed at any point resume
// without redoing finished members. Watch keeps running, rotating on a
// timer and whenever certificate files or the spec change.
//
// Files: options.go (the API: Options, Result, errors), rotate.go (Run
// and its phases), steps.go (renew, deploy, clients), templates.go (the
// deploy and restart templates, rendered once for every plan), plan.go
// and planprint.go (the plan), prove.go (proofs on the wire), roll.go
// (the rolling restart, the hand-off and its transferee), etcd.go (the
// etcd client: health, leader moves, serving serials), command.go (the
// deploy/restart command runner), log.go, state.go (the journal),
// started.go, lock.go, metrics.go and watch.go (which expands its spec
// once per load and hands that inventory to every pass); expired.go (probes on
// expired certificates, the refusal that names --recover) and recover.go
// (--recover). The CA rotation (etcdpki ca rotate): carotate.go (RunCA,
// its stages in order, prepare), carotate_stages.go (trust-both and
// finish: write, deploy, prove, restart), carotate_reissue.go (reissue:
// every leaf from the new CA, proven without a restart), carotate_proof.go (the
// trust each member shows on the wire), carotate_retire.go (the order in
// which the old CA goes to backup/ and the new one into PKI/etcd) and
// carotate_print.go (the dry run's plan).
//
// It reads names, paths, certificate status and CA-rotation state from
// package pki (the read model) and writes the PKI directory only through
// package issue: the renewed pairs, the CRL, the CA rotation's stores
// (issue.WriteNextCA, WriteCABundles, BackupCA, SwitchCA, DropRetiredCAs,
// RemoveNextCA) and the journal (issue.WriteJournal) alike. The only file
// it writes itself is the operator's --metrics-file, outside the PKI
// directory (internal/layering's test holds it to that).
package rotate
