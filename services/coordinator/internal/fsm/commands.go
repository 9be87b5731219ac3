package fsm

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// CommandType says which command a log entry carries; it is the entry's first
// byte. Values are part of the log format: never renumber them.
//
// After the type comes the command, in one of two encodings, which the byte
// after the type tells apart:
//
//	type, '{', JSON…            coordinators before issue 15 (still read)
//	type, 0x01, protobuf…       raftlog.v1 messages (what Encode writes)
//
// A JSON body is an object, so it always starts with '{'; no JSON text starts
// with 0x01.
type CommandType uint8

// Command types.
const (
	CmdRegisterSession CommandType = 1
	CmdTransition      CommandType = 2
	CmdAcquireLock     CommandType = 3
	CmdRenewLock       CommandType = 4
	CmdReleaseLock     CommandType = 5
	CmdExpireLocks     CommandType = 6
	CmdSetNode         CommandType = 7
	CmdRemoveNode      CommandType = 8
	CmdPurgeSessions   CommandType = 9
	// Credentials (internal/auth) take numbers from 20 up.
	CmdIssueCredential  CommandType = 20
	CmdRevokeCredential CommandType = 21
)

func (t CommandType) String() string {
	switch t {
	case CmdRegisterSession:
		return "register_session"
	case CmdTransition:
		return "transition"
	case CmdAcquireLock:
		return "acquire_lock"
	case CmdRenewLock:
		return "renew_lock"
	case CmdReleaseLock:
		return "release_lock"
	case CmdExpireLocks:
		return "expire_locks"
	case CmdSetNode:
		return "set_node"
	case CmdRemoveNode:
		return "remove_node"
	case CmdPurgeSessions:
		return "purge_sessions"
	case CmdIssueCredential:
		return "issue_credential"
	case CmdRevokeCredential:
		return "revoke_credential"
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// RegisterSession adds a session. At is the leader's time.
type RegisterSession struct {
	At      time.Time     `json:"at"`
	Session state.Session `json:"session"`
}

// Transition commits one liveness change of a session: registered → active,
// active → suspect, suspect → active, any live state → failed or
// deregistered. Each is its own entry, so that every session event has a Raft
// index of its own and a watcher resuming after an index misses nothing;
// throughput comes from Raft's group commit, which writes many queued entries
// with one fsync.
type Transition struct {
	At         time.Time        `json:"at"`
	Transition state.Transition `json:"transition"`
}

// AcquireLock grants a lock; the entry's index becomes the fencing token.
type AcquireLock struct {
	At        time.Time     `json:"at"`
	Key       string        `json:"key"`
	SessionID string        `json:"session_id"`
	TTL       time.Duration `json:"ttl"`
}

// RenewLock extends a held lock.
type RenewLock struct {
	At        time.Time     `json:"at"`
	Key       string        `json:"key"`
	SessionID string        `json:"session_id"`
	Fencing   uint64        `json:"fencing"`
	TTL       time.Duration `json:"ttl,omitempty"`
}

// ReleaseLock frees a held lock.
type ReleaseLock struct {
	At        time.Time `json:"at"`
	Key       string    `json:"key"`
	SessionID string    `json:"session_id"`
	Fencing   uint64    `json:"fencing"`
}

// LockGrant names one grant of a lock.
type LockGrant struct {
	Key     string `json:"key"`
	Fencing uint64 `json:"fencing"`
}

// ExpireLocks frees, in one entry, the locks whose TTL ran out by the leader's
// clock (the batched form: expiries produce no session events).
type ExpireLocks struct {
	At    time.Time   `json:"at"`
	Locks []LockGrant `json:"locks"`
}

// SetNode records a node's gRPC address.
type SetNode struct {
	Node state.Node `json:"node"`
}

// RemoveNode forgets a node.
type RemoveNode struct {
	ID string `json:"id"`
}

// PurgeSessions forgets failed and deregistered sessions that ended before Before.
type PurgeSessions struct {
	At     time.Time `json:"at"`
	Before time.Time `json:"before"`
}

// IssueCredential records a credential the leader signed.
type IssueCredential struct {
	Credential state.Credential `json:"credential"`
}

// RevokeCredential revokes a credential. ExpiresAt, when set, lets an
// unrecorded credential be revoked (until it would expire anyway).
type RevokeCredential struct {
	At        time.Time `json:"at"`
	ID        string    `json:"id"`
	By        string    `json:"by,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// CredentialResult answers IssueCredential and RevokeCredential.
type CredentialResult struct {
	Credential state.Credential
	Err        error
}

// formatProtobuf, after the command type, marks a protobuf body.
const formatProtobuf byte = 0x01

// Encoding is how Encode writes a command. Apply reads both, whichever a
// node writes.
type Encoding uint8

// Encodings.
const (
	// Protobuf is the raftlog.v1 message of the command: about a third of
	// JSON's size, and several times faster to decode on every node.
	Protobuf Encoding = iota
	// JSON is what coordinators wrote before issue 15. A leader must keep
	// writing it while any node of its cluster predates protobuf entries,
	// since such a node cannot apply them.
	JSON
)

func (e Encoding) String() string {
	switch e {
	case Protobuf:
		return "protobuf"
	case JSON:
		return "json"
	}
	return fmt.Sprintf("encoding(%d)", uint8(e))
}

// ParseEncoding reads an Encoding's name.
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "protobuf":
		return Protobuf, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("unknown log encoding %q (protobuf or json)", s)
}

// Encode frames a command for the log in protobuf.
func Encode(t CommandType, cmd any) ([]byte, error) {
	return Protobuf.Encode(t, cmd)
}

// Encode frames a command for the log in e. A command protobuf cannot carry
// (a string that is not UTF-8) is written as JSON, which replaces such bytes
// but never fails on them, as the coordinator always did.
func (e Encoding) Encode(t CommandType, cmd any) ([]byte, error) {
	if e == Protobuf {
		m, err := commandMessage(cmd)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", t, err)
		}
		// The entry is allocated once, at its final size, and the
		// message marshalled straight after the two framing bytes.
		buf := make([]byte, 2, 2+proto.Size(m))
		buf[0], buf[1] = byte(t), formatProtobuf
		if buf, err = marshalProto.MarshalAppend(buf, m); err == nil {
			return buf, nil
		}
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return append([]byte{byte(t)}, body...), nil
}

// decodeBody decodes a command's body, in either encoding, into v.
func decodeBody(body []byte, v any) error {
	if len(body) > 0 && body[0] == formatProtobuf {
		return decodeProto(body[1:], v)
	}
	return json.Unmarshal(body, v)
}

// Results of Apply, by command.
type (
	// RegisterResult answers RegisterSession.
	RegisterResult struct {
		Session state.Session
		Err     error
	}
	// LockResult answers AcquireLock and RenewLock. On ErrLockHeld, Lock is the holder's.
	LockResult struct {
		Lock state.Lock
		Err  error
	}
	// ReleaseResult answers ReleaseLock.
	ReleaseResult struct {
		Err error
	}
	// ExpireResult answers ExpireLocks.
	ExpireResult struct {
		Freed []string
	}
	// PurgeResult answers PurgeSessions.
	PurgeResult struct {
		Purged int
	}
)
