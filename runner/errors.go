package runner

import (
	"fmt"
	"time"
)

// Defaults for the timeouts, chosen for a real host rather than a laptop.
const (
	// DefaultMemberTimeout bounds the wait for a restarted member: etcd
	// may replay a large WAL, but two minutes without serving means
	// something is wrong, and the other members must stay untouched.
	DefaultMemberTimeout = 2 * time.Minute
	// DefaultHandOffSettle is the pause between a leadership transfer
	// and stopping the next member. Measured on loopback under client
	// load: stopping a member right after the transfer stalled client
	// requests for 150-750 ms in most runs (the new leader's commits
	// waited on something etcd does not expose); 300 ms still showed
	// 130-230 ms stalls, 500 ms none above 15 ms. Against real restarts
	// of several seconds each, half a second is noise.
	DefaultHandOffSettle = 500 * time.Millisecond
	// DefaultCommandTimeout bounds one deploy or restart command: an ssh
	// to a host that went away must not hold the lock forever.
	DefaultCommandTimeout = 5 * time.Minute
)

// MemberResult is one restarted member.
type MemberResult struct {
	Name string
	// Restart is from running its restart command until it passed every
	// health gate: the floor a rotation cannot beat.
	Restart      time.Duration
	ServerSerial string
	PeerSerial   string
}

// HandOff is one leadership transfer: MoveLeader, the wait until every
// member follows the new leader, and the settle time after it.
type HandOff struct {
	From, To string
	Start    time.Time
	// Took runs from MoveLeader until every member follows the new
	// leader; it excludes the settle pause that follows.
	Took time.Duration
}

// InterruptedError is a run stopped by its context (SIGTERM) between two
// steps. Nothing is half done: the next run resumes.
type InterruptedError struct{ Step string }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted before %s; the next run resumes from the journal", e.Step)
}

// ExitCode is 1: the rotation did not finish.
func (e *InterruptedError) ExitCode() int { return 1 }

// MemberError is a member that did not come back as it should.
type MemberError struct {
	Member string
	Err    error
}

func (e *MemberError) Error() string {
	return fmt.Sprintf("member %s: %v; stopped, the other members are untouched", e.Member, e.Err)
}

func (e *MemberError) Unwrap() error { return e.Err }

// ExitCode is 1: a failed operation.
func (e *MemberError) ExitCode() int { return 1 }
