// Package rotate renews the etcd certificates that are due and puts them
// into effect without losing quorum: plan (what is due, which members
// need a restart, in which order), renew (atomic pair swaps, old pairs
// kept in PKI/backup), deploy (per-node command templates), then, per
// member, either a proof or a restart.
//
// etcd (3.2 and later) reads its certificate and key files at every new
// TLS handshake and an established connection is never verified again, so
// a renewed leaf needs no restart: in the default mode (RestartAuto) fresh
// handshakes prove it in effect instead (see runner/prove.go), and no leader
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
// Files: options.go (the API: Options, Result, restart modes), rotate.go
// (Run and its phases on a leafRun, the runner plus the leaf-only
// options), steps.go (renew, deploy, clients), plan.go and planprint.go
// (the plan and the dry run's print of it), reasons.go (why a member
// restarts), ineffect.go (the proof that what is on disk is in effect),
// metrics.go (the next expiry for the textfile), watch.go (which expands
// its spec once per load and hands that inventory to every pass),
// expired.go (probes on expired certificates, the refusal that names
// --recover) and recover.go (--recover).
//
// What the leaf rotation shares with the other operations (the lock, the
// journal, deploy and restart commands, proofs on the wire, the rolling
// restart and its hand-off, the etcd client, the CRL upkeep, the metrics
// textfile) is package runner's; the CA rotation, member add/remove and
// certs revoke are packages carotate, member and revoke. rotate imports
// none of them.
//
// It reads names, paths, certificate status and CA-rotation state from
// package pki (the read model) and writes the PKI directory only through
// package issue (the renewed pairs, the re-issue of --recover) and the
// runner (the CRL, the journal); the operator's --metrics-file is the
// runner's to write, outside the PKI directory.
package rotate
