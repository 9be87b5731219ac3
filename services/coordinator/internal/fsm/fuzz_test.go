package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// prepared is an FSM with two sessions and one lock, so that fuzzed commands
// reach transitions, renewals, releases and expiries of things that exist:
// s1 holds lock "k" with fencing token 2.
func prepared(t *testing.T) *harness {
	h := newHarness(t)
	h.register("s1", "claude_1", t0)
	if res := h.acquire("k", "s1", time.Minute, t0); res.Err != nil || res.Lock.FencingToken != 2 {
		t.Fatalf("acquire k: %+v", res)
	}
	h.register("s2", "codex_1", t0)
	return h
}

func persist(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// commandSeeds are one well-formed entry of every command type in each
// encoding the log holds, plus framing that must be refused.
func commandSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, e := range []Encoding{Protobuf, JSON} {
		seeds = append(seeds, encodedSeeds(t, e)...)
	}
	return append(seeds,
		[]byte{},
		[]byte{byte(CmdAcquireLock)},
		[]byte{byte(CmdRenewLock), '{', '}'},
		[]byte{byte(CmdRenewLock), formatProtobuf},
		[]byte{byte(CmdRenewLock), formatProtobuf, 0xff},
		[]byte{byte(CmdExpireLocks), formatProtobuf, 0x12, 0x02, 0x0a, 0x7f},
		[]byte{0xff, 'n', 'u', 'l', 'l'},
		[]byte{0xff, formatProtobuf},
	)
}

func encodedSeeds(t testing.TB, e Encoding) [][]byte {
	enc := func(typ CommandType, cmd any) []byte {
		b, err := e.Encode(typ, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	at := t0.Add(time.Second)
	return [][]byte{
		enc(CmdRegisterSession, RegisterSession{At: at, Session: state.Session{ID: "s3", Name: "gemini_1", Tier: state.TierManager, Provider: state.ProviderGemini, MaxConcurrentTasks: 1}}),
		enc(CmdTransition, Transition{At: at, Transition: state.Transition{SessionID: "s1", To: state.StatusFailed}}),
		enc(CmdAcquireLock, AcquireLock{At: at, Key: "k2", SessionID: "s2", TTL: time.Second}),
		enc(CmdRenewLock, RenewLock{At: at, Key: "k", SessionID: "s1", Fencing: 2, TTL: time.Hour}),
		enc(CmdReleaseLock, ReleaseLock{At: at, Key: "k", SessionID: "s1", Fencing: 2}),
		enc(CmdExpireLocks, ExpireLocks{At: at.Add(time.Hour), Locks: []LockGrant{{Key: "k", Fencing: 2}}}),
		enc(CmdSetNode, SetNode{Node: state.Node{ID: "node-2", GRPCAddress: "127.0.0.1:7002"}}),
		enc(CmdRemoveNode, RemoveNode{ID: "node-2"}),
		enc(CmdPurgeSessions, PurgeSessions{At: at, Before: at.Add(time.Hour)}),
		enc(CmdIssueCredential, IssueCredential{Credential: state.Credential{ID: "c1", Role: "teacher", Classrooms: []string{"c"}, IssuedAt: at, ExpiresAt: at.Add(time.Hour)}}),
		enc(CmdRevokeCredential, RevokeCredential{At: at, ID: "c1", By: "admin"}),
		enc(CmdRevokeCredential, RevokeCredential{At: at, ID: "c2", ExpiresAt: at.Add(time.Hour)}),
	}
}

// FuzzApplyCommand applies an arbitrary log entry to a state machine. Apply
// must never panic (a panic in Apply takes the node down, and every node
// applies the same entry); it must be deterministic (two replicas applying
// the same entry end in the same state); and the state must survive a
// snapshot and restore unchanged.
func FuzzApplyCommand(f *testing.F) {
	for _, s := range commandSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := prepared(t), prepared(t)
		a.index++
		b.index++
		_ = a.fsm.Apply(&raft.Log{Index: a.index, Type: raft.LogCommand, Data: data})
		_ = b.fsm.Apply(&raft.Log{Index: b.index, Type: raft.LogCommand, Data: bytes.Clone(data)})
		sa, sb := persist(t, a.fsm), persist(t, b.fsm)
		if !bytes.Equal(sa, sb) {
			t.Fatalf("two replicas differ after %q:\n%s\n%s", data, sa, sb)
		}
		restored := New(state.NewStore(1000))
		if err := restored.Restore(io.NopCloser(bytes.NewReader(sa))); err != nil {
			t.Fatalf("restore after %q: %v", data, err)
		}
		if sr := persist(t, restored); !bytes.Equal(sa, sr) {
			t.Fatalf("snapshot changed through a restore after %q:\n%s\n%s", data, sa, sr)
		}
	})
}

// FuzzFencingToken renews and releases the lock s1 holds with an arbitrary
// fencing token and session: only the holder with the grant's token (2) may;
// anything else fails (stale token, not the holder, no such session) and
// leaves the lock as it was.
func FuzzFencingToken(f *testing.F) {
	f.Add(uint64(2), "s1", false)
	f.Add(uint64(2), "s1", true)
	f.Add(uint64(1), "s1", true)
	f.Add(uint64(3), "s1", false)
	f.Add(uint64(0), "s1", false)
	f.Add(uint64(1<<63), "s2", true)
	f.Add(uint64(2), "s2", false)
	f.Fuzz(func(t *testing.T, fencing uint64, session string, release bool) {
		h := prepared(t)
		at := t0.Add(time.Second)
		var err error
		if release {
			err = h.apply(CmdReleaseLock, ReleaseLock{At: at, Key: "k", SessionID: session, Fencing: fencing}).(ReleaseResult).Err
		} else {
			err = h.apply(CmdRenewLock, RenewLock{At: at, Key: "k", SessionID: session, Fencing: fencing, TTL: time.Hour}).(LockResult).Err
		}
		owner := session == "s1" && fencing == 2
		if owner && err != nil {
			t.Fatalf("the holder's own token %d was refused: %v", fencing, err)
		}
		if owner {
			return
		}
		if err == nil {
			t.Fatalf("session %q with token %d changed s1's lock (token 2)", session, fencing)
		}
		if !errors.Is(err, state.ErrStaleFencing) && !errors.Is(err, state.ErrNotLockOwner) && !errors.Is(err, state.ErrSessionNotFound) {
			t.Fatalf("session %q with token %d: %v, want a stale-token, not-holder or unknown-session error", session, fencing, err)
		}
		l, ok := h.fsm.Store().Lock("k")
		if !ok || l.OwnerID != "s1" || l.FencingToken != 2 {
			t.Fatalf("lock after a refused call = %+v, %v; want s1's with token 2", l, ok)
		}
	})
}
