package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/issue"
	"github.com/etcdpki/etcdpki/pki"
)

// StateFile is the journal's name inside the PKI directory.
const StateFile = pki.JournalFile

// State is rotate's journal. It records, per certificate, the serial that
// is known to be in effect: deployed to its host and, for a node's
// certificates, proven on the wire (fresh handshakes show the member
// serving them and accepting them, see Proof) or presented by its member
// after a restart, which then proved healthy. With --restart=never
// --no-verify, and under --restart=always for certificates no restart
// puts into effect (a node's healthcheck client), deployed is all the
// journal knows.
// A certificate whose file serial differs from its recorded serial still
// has to be deployed and put into effect, whoever replaced the file (this run, a
// run killed halfway, `etcdpki certs renew`, another tool), so a run that
// dies at any point is resumed by the next one without redoing finished
// members: their serials are already recorded.
//
// The file is replaced in one rename after fsync (issue.WriteJournal), so
// a kill -9 leaves either the previous journal or the new one.
type State struct {
	// InEffect maps a certificate ID (pki.Target.ID) to its serial in
	// effect.
	InEffect map[string]string `json:"inEffect"`
	// Started maps a node name to what its member was last started with:
	// the files etcd reads only at start. A difference from the bundle
	// is what makes --restart=auto restart a member.
	Started map[string]Started `json:"started,omitempty"`
	// Proofs maps a node name to the last proof that its renewed
	// certificates are in effect without a restart.
	Proofs map[string]Proof `json:"proofs,omitempty"`
	// CA is the CA rotation in progress (etcdpki ca rotate): the proofs
	// of its stages, so that a resumed run restarts no member twice.
	CA *CAJournal `json:"caRotation,omitempty"`
	// Revoke is the revocation in progress (etcdpki certs revoke), so
	// that a run killed at any step is finished by the next one.
	Revoke *RevokeJournal `json:"revoke,omitempty"`
	// Member is the membership change in progress (etcdpki member add
	// or remove), so that a run killed at any step is finished by the
	// next one.
	Member *MemberJournal `json:"member,omitempty"`
	// Replaced maps a certificate ID to the serial that replaced it when
	// it was last revoked: revoking it again changes nothing.
	Replaced map[string]string `json:"revokedAndReplacedBy,omitempty"`
	// LastSuccess is when a run last ended with everything in effect.
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	// LastRun is when a run last ended, successful or not.
	LastRun time.Time `json:"lastRun,omitzero"`
	// LastError is the error that ended the last failed run.
	LastError string `json:"lastError,omitempty"`
	// Updated is when the journal was last written.
	Updated time.Time `json:"updated"`
}

// StatePath is the journal's path in the PKI directory dir.
func StatePath(dir string) string { return filepath.Join(dir, StateFile) }

// LoadState reads the journal of the PKI directory dir. A missing journal
// is an empty state: the first run records what is on disk as in effect.
func LoadState(dir string) (*State, error) {
	st := &State{InEffect: map[string]string{}, Started: map[string]Started{}, Proofs: map[string]Proof{}}
	data, err := regular.ReadFile(StatePath(dir), regular.MaxState)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rotation journal: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("rotation journal %s is corrupt (move it away to start afresh): %w", StatePath(dir), err)
	}
	if st.InEffect == nil {
		st.InEffect = map[string]string{}
	}
	if st.Started == nil {
		st.Started = map[string]Started{}
	}
	if st.Proofs == nil {
		st.Proofs = map[string]Proof{}
	}
	return st, nil
}

// Started is what a member was last started with: SHA-256 digests of the
// files etcd reads only at start. The first run that sees a node takes
// its bundle as what the member runs with (etcdpki init wrote it, and the
// member was started from it); after that only a restart by rotate
// records new digests.
type Started struct {
	// CA is the digest of the bytes of ca.crt in the node's bundle: etcd
	// builds its trusted pool from it once.
	CA string `json:"caSHA256"`
	// Config is the digest of etcd.conf.yml without the initial-* keys,
	// which etcd reads only to bootstrap an empty data directory (see
	// configDigest); "" when the bundle has no config file.
	Config string `json:"configSHA256,omitempty"`
	// Env is the digest of etcd.env without its ETCD_INITIAL_* lines;
	// "" when the bundle has none (or the journal predates it).
	Env string `json:"envSHA256,omitempty"`
}

// Proof is what fresh TLS handshakes showed for one member after its
// files switched: the serials its ports served, the member whose peer
// port accepted its new peer certificate, and how long the proof took.
type Proof struct {
	ServerSerial string    `json:"serverSerial"`
	PeerSerial   string    `json:"peerSerial"`
	AcceptedBy   string    `json:"peerCertAcceptedBy,omitempty"`
	At           time.Time `json:"at"`
	Took         string    `json:"took"`
}

// Save writes the journal atomically, through package issue, the only
// writer of the PKI directory.
func (st *State) Save(dir string, now time.Time) error {
	st.Updated = now.UTC()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode rotation journal: %w", err)
	}
	if err := issue.WriteJournal(dir, append(data, '\n')); err != nil {
		return fmt.Errorf("write rotation journal: %w", err)
	}
	return nil
}

// CAJournal is the CA rotation's part of the journal.
type CAJournal struct {
	// Next is the serial of the CA being rolled out: a journal about
	// another CA is stale.
	Next string `json:"nextCASerial"`
	// Proofs maps a stage to the members (node names, or client/NAME)
	// whose part of it is proven.
	Proofs map[string]map[string]CAProof `json:"proofs"`
	// Done maps a stage to when it was proven in full.
	Done map[string]time.Time `json:"stagesDone,omitempty"`
}

// CAProof is what showed one member (or client) through one stage.
type CAProof struct {
	// Restarted is true when this rotation restarted it for the stage.
	Restarted bool `json:"restarted,omitempty"`
	// Shown lists what the handshakes showed, one phrase each.
	Shown []string  `json:"shown"`
	At    time.Time `json:"at"`
}

// MemberJournal is a membership change in progress.
type MemberJournal struct {
	// Op is "add" or "remove".
	Op   string `json:"op"`
	Name string `json:"name"`
	// ID is etcd's member ID (hex) once known.
	ID string `json:"id,omitempty"`
	// PeerURL is the member's peer URL (add: from the spec).
	PeerURL string `json:"peerURL,omitempty"`
	// ClientURL is where the member serves (remove: from the member list,
	// for the leadership hand-off).
	ClientURL string `json:"clientURL,omitempty"`
	// Term is the raft term when the change began (add proves it
	// unchanged).
	Term uint64 `json:"raftTerm"`
	// Serials are the removed member's certificates to revoke.
	Serials []string `json:"serials,omitempty"`
	// Step is the next step.
	Step    string    `json:"step"`
	Started time.Time `json:"started"`
}

// RevokeJournal is a revocation in progress.
type RevokeJournal struct {
	// Request is what the command named (targets, or serials), to tell a
	// re-run of the same revoke from another one.
	Request []string `json:"request"`
	// Targets and Serials are what is being revoked: the request less
	// what was revoked before.
	Targets []string `json:"targets,omitempty"`
	Serials []string `json:"serials,omitempty"`
	Reason  string   `json:"reason"`
	// Old maps each target to the serial being revoked.
	Old map[string]string `json:"old,omitempty"`
	// Entries are the CRL's new entries, complete (name, serial, reason,
	// time, the certificate's notAfter): what publishing needs, so that
	// a revoke finishes although its targets left the spec since.
	Entries []pki.Revoked `json:"entries,omitempty"`
	// Step is the next step: renew, prove, publish, deploy, refused.
	Step    string    `json:"step"`
	Started time.Time `json:"started"`
}
