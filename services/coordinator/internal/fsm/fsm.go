// Package fsm is the coordinator's replicated state machine: it decodes
// committed Raft log entries, each a typed command stamped with the leader's
// time, and applies them to the state store; it snapshots and restores that
// store. Apply is deterministic: it never reads the local clock.
package fsm

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// FSM implements raft.FSM and raft.BatchingFSM over a state store.
type FSM struct {
	store *state.Store

	mu          sync.RWMutex
	onLockFreed func(keys []string)
}

// New returns a state machine that applies to store.
func New(store *state.Store) *FSM {
	return &FSM{store: store}
}

// Store is the state the machine applies to.
func (f *FSM) Store() *state.Store { return f.store }

// OnLockFreed sets a function called, after the store is updated, with the
// keys of locks an entry freed (released, expired, or released with a session
// that ended). The leader uses it to wake lock waiters. It must not block.
func (f *FSM) OnLockFreed(fn func(keys []string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onLockFreed = fn
}

// Apply applies one committed entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		f.store.SetIndex(l.Index)
		return nil
	}
	res, freed := f.apply(l.Index, l.Data)
	f.store.SetIndex(l.Index)
	if len(freed) > 0 {
		f.mu.RLock()
		hook := f.onLockFreed
		f.mu.RUnlock()
		if hook != nil {
			hook(freed)
		}
	}
	return res
}

// ApplyBatch applies several committed entries in order.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	for i, l := range logs {
		out[i] = f.Apply(l)
	}
	return out
}

func (f *FSM) apply(index uint64, data []byte) (result any, freedLocks []string) {
	if len(data) == 0 {
		return fmt.Errorf("empty command at index %d", index), nil
	}
	t, body := CommandType(data[0]), data[1:]
	decode := func(v any) error {
		if err := decodeBody(body, v); err != nil {
			return fmt.Errorf("decode %s at index %d: %w", t, index, err)
		}
		return nil
	}
	switch t {
	case CmdRegisterSession:
		var c RegisterSession
		if err := decode(&c); err != nil {
			return RegisterResult{Err: err}, nil
		}
		s, err := f.store.ApplyRegister(index, c.At, c.Session)
		return RegisterResult{Session: s, Err: err}, nil

	case CmdTransition:
		var c Transition
		if err := decode(&c); err != nil {
			return state.TransitionResult{Err: err}, nil
		}
		res := f.store.ApplyTransition(index, c.At, c.Transition)
		return res, res.ReleasedLocks

	case CmdAcquireLock:
		var c AcquireLock
		if err := decode(&c); err != nil {
			return LockResult{Err: err}, nil
		}
		l, err := f.store.ApplyAcquireLock(index, c.At, c.Key, c.SessionID, c.TTL)
		return LockResult{Lock: l, Err: err}, nil

	case CmdRenewLock:
		var c RenewLock
		if err := decode(&c); err != nil {
			return LockResult{Err: err}, nil
		}
		l, err := f.store.ApplyRenewLock(c.At, c.Key, c.SessionID, c.Fencing, c.TTL)
		return LockResult{Lock: l, Err: err}, nil

	case CmdReleaseLock:
		var c ReleaseLock
		if err := decode(&c); err != nil {
			return ReleaseResult{Err: err}, nil
		}
		err := f.store.ApplyReleaseLock(c.Key, c.SessionID, c.Fencing)
		if err == nil {
			freedLocks = []string{c.Key}
		}
		return ReleaseResult{Err: err}, freedLocks

	case CmdExpireLocks:
		var c ExpireLocks
		if err := decode(&c); err != nil {
			return err, nil
		}
		var res ExpireResult
		for _, g := range c.Locks {
			if f.store.ApplyExpireLock(c.At, g.Key, g.Fencing) {
				res.Freed = append(res.Freed, g.Key)
			}
		}
		return res, res.Freed

	case CmdSetNode:
		var c SetNode
		if err := decode(&c); err != nil {
			return err, nil
		}
		f.store.ApplySetNode(c.Node)
		return nil, nil

	case CmdRemoveNode:
		var c RemoveNode
		if err := decode(&c); err != nil {
			return err, nil
		}
		f.store.ApplyRemoveNode(c.ID)
		return nil, nil

	case CmdPurgeSessions:
		var c PurgeSessions
		if err := decode(&c); err != nil {
			return err, nil
		}
		return PurgeResult{Purged: f.store.ApplyPurge(c.Before)}, nil

	case CmdIssueCredential:
		var c IssueCredential
		if err := decode(&c); err != nil {
			return CredentialResult{Err: err}, nil
		}
		return CredentialResult{Credential: f.store.ApplyIssueCredential(c.Credential)}, nil

	case CmdRevokeCredential:
		var c RevokeCredential
		if err := decode(&c); err != nil {
			return CredentialResult{Err: err}, nil
		}
		cred, err := f.store.ApplyRevokeCredential(c.At, c.ID, c.By, c.ExpiresAt)
		return CredentialResult{Credential: cred, Err: err}, nil
	}
	return fmt.Errorf("%w: type %d at index %d", state.ErrUnknownCommand, uint8(t), index), nil
}

// Snapshot captures the whole state at the last applied entry.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{dump: f.store.Dump()}, nil
}

// Restore replaces the whole state with a snapshot's.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	var d state.Dump
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	f.store.Restore(d)
	return nil
}

type snapshot struct{ dump state.Dump }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.dump); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
