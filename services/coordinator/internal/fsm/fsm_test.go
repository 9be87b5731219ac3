package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// harness applies commands at increasing indexes, as Raft would.
type harness struct {
	t     *testing.T
	fsm   *FSM
	index uint64
	freed []string
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, fsm: New(state.NewStore(1000))}
	h.fsm.OnLockFreed(func(keys []string) { h.freed = append(h.freed, keys...) })
	return h
}

func (h *harness) apply(typ CommandType, cmd any) any {
	h.t.Helper()
	data, err := Encode(typ, cmd)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	return h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
}

func (h *harness) register(id, name string, at time.Time) state.Session {
	h.t.Helper()
	res := h.apply(CmdRegisterSession, RegisterSession{At: at, Session: state.Session{ID: id, Name: name, Tier: state.TierWorker, Provider: state.ProviderClaude, MaxConcurrentTasks: 2, TokenHash: []byte("hash-" + id)}}).(RegisterResult)
	if res.Err != nil {
		h.t.Fatalf("register %s: %v", name, res.Err)
	}
	return res.Session
}

func (h *harness) transition(id string, to state.Status, at time.Time) state.TransitionResult {
	h.t.Helper()
	return h.apply(CmdTransition, Transition{At: at, Transition: state.Transition{SessionID: id, To: to}}).(state.TransitionResult)
}

func (h *harness) acquire(key, id string, ttl time.Duration, at time.Time) LockResult {
	h.t.Helper()
	return h.apply(CmdAcquireLock, AcquireLock{At: at, Key: key, SessionID: id, TTL: ttl}).(LockResult)
}

func TestRegisterUsesLeaderTimeAndIndex(t *testing.T) {
	h := newHarness(t)
	s := h.register("s1", "claude_1", t0)
	if s.Status != state.StatusRegistered || !s.RegisteredAt.Equal(t0) || s.RegisteredIndex != 1 {
		t.Fatalf("registered session = %+v", s)
	}
	res := h.apply(CmdRegisterSession, RegisterSession{At: t0, Session: state.Session{ID: "s2", Name: "claude_1"}}).(RegisterResult)
	if !errors.Is(res.Err, state.ErrNameTaken) {
		t.Fatalf("second live claude_1: err = %v, want ErrNameTaken", res.Err)
	}
	// Once failed, the name is free again.
	if r := h.transition("s1", state.StatusFailed, t0.Add(time.Minute)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if s := h.register("s3", "claude_1", t0.Add(2*time.Minute)); s.RegisteredIndex != h.index {
		t.Fatalf("re-registered claude_1 at index %d, want %d", s.RegisteredIndex, h.index)
	}
}

func TestTransitions(t *testing.T) {
	cases := []struct {
		name     string
		path     []state.Status
		wantLast state.Status
		events   []state.EventType
		failures int
		err      error
	}{
		{"first heartbeat", []state.Status{state.StatusActive}, state.StatusActive, []state.EventType{state.EventActive}, 0, nil},
		{"missed lease", []state.Status{state.StatusActive, state.StatusSuspect}, state.StatusSuspect, []state.EventType{state.EventActive, state.EventSuspect}, 1, nil},
		{"recovered", []state.Status{state.StatusActive, state.StatusSuspect, state.StatusActive}, state.StatusActive, []state.EventType{state.EventActive, state.EventSuspect, state.EventRecovered}, 0, nil},
		{"failed", []state.Status{state.StatusActive, state.StatusSuspect, state.StatusFailed}, state.StatusFailed, []state.EventType{state.EventActive, state.EventSuspect, state.EventFailed}, 2, nil},
		{"same state is a no-op", []state.Status{state.StatusActive, state.StatusActive}, state.StatusActive, []state.EventType{state.EventActive}, 0, nil},
		{"failed is final", []state.Status{state.StatusFailed, state.StatusActive}, state.StatusFailed, []state.EventType{state.EventFailed}, 1, state.ErrSessionFailed},
		{"deregistered is final", []state.Status{state.StatusDeregistered, state.StatusActive}, state.StatusDeregistered, []state.EventType{state.EventDeregistered}, 0, state.ErrSessionGone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.register("s1", "w", t0)
			var last state.TransitionResult
			for i, to := range c.path {
				last = h.transition("s1", to, t0.Add(time.Duration(i+1)*time.Second))
			}
			if !errors.Is(last.Err, c.err) || (c.err == nil && last.Err != nil) {
				t.Fatalf("last transition err = %v, want %v", last.Err, c.err)
			}
			s, _ := h.fsm.Store().Session("s1")
			if s.Status != c.wantLast || s.ConsecutiveFailures != c.failures {
				t.Fatalf("session = %s with %d failures, want %s with %d", s.Status, s.ConsecutiveFailures, c.wantLast, c.failures)
			}
			events, _ := h.fsm.Store().EventsAfter(1, 0) // after the registration
			var got []state.EventType
			for _, e := range events {
				got = append(got, e.Type)
			}
			if !reflect.DeepEqual(got, c.events) {
				t.Fatalf("events = %v, want %v", got, c.events)
			}
		})
	}
}

func TestLocksFencingAndOwnership(t *testing.T) {
	h := newHarness(t)
	h.register("a", "a", t0)
	h.register("b", "b", t0)
	got := h.acquire("repo:web/app.go", "a", 10*time.Second, t0)
	if got.Err != nil || got.Lock.FencingToken != h.index || !got.Lock.ExpiresAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("acquire = %+v", got)
	}
	token := got.Lock.FencingToken
	if r := h.acquire("repo:web/app.go", "b", time.Second, t0); !errors.Is(r.Err, state.ErrLockHeld) || r.Lock.OwnerID != "a" {
		t.Fatalf("acquire by b = %+v, want ErrLockHeld naming a", r)
	}
	// Re-acquiring by the owner renews and keeps the token.
	if r := h.acquire("repo:web/app.go", "a", 20*time.Second, t0.Add(time.Second)); r.Err != nil || r.Lock.FencingToken != token {
		t.Fatalf("re-acquire by owner = %+v", r)
	}
	renew := func(sess string, fencing uint64) error {
		return h.apply(CmdRenewLock, RenewLock{At: t0.Add(2 * time.Second), Key: "repo:web/app.go", SessionID: sess, Fencing: fencing}).(LockResult).Err
	}
	release := func(sess string, fencing uint64) error {
		return h.apply(CmdReleaseLock, ReleaseLock{At: t0.Add(3 * time.Second), Key: "repo:web/app.go", SessionID: sess, Fencing: fencing}).(ReleaseResult).Err
	}
	if err := renew("b", token); !errors.Is(err, state.ErrNotLockOwner) {
		t.Fatalf("renew by b: %v", err)
	}
	if err := renew("a", token-1); !errors.Is(err, state.ErrStaleFencing) {
		t.Fatalf("renew with stale token: %v", err)
	}
	if err := release("a", token+1); !errors.Is(err, state.ErrStaleFencing) {
		t.Fatalf("release with wrong token: %v", err)
	}
	if l, _ := h.fsm.Store().Lock("repo:web/app.go"); l.OwnerID != "a" || l.FencingToken != token {
		t.Fatalf("a rejected call changed the lock: %+v", l)
	}
	if err := release("a", token); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.freed, []string{"repo:web/app.go"}) {
		t.Fatalf("freed hook saw %v", h.freed)
	}
	// The next grant has a larger token.
	if r := h.acquire("repo:web/app.go", "b", time.Second, t0.Add(4*time.Second)); r.Err != nil || r.Lock.FencingToken <= token {
		t.Fatalf("grant after release = %+v, want a token above %d", r, token)
	}
}

func TestExpiryIsCommittedAndNeverEarly(t *testing.T) {
	h := newHarness(t)
	h.register("a", "a", t0)
	l := h.acquire("k", "a", 10*time.Second, t0).Lock
	early := h.apply(CmdExpireLocks, ExpireLocks{At: t0.Add(9 * time.Second), Locks: []LockGrant{{Key: "k", Fencing: l.FencingToken}}}).(ExpireResult)
	if len(early.Freed) != 0 {
		t.Fatalf("expired before its TTL: %+v", early)
	}
	stale := h.apply(CmdExpireLocks, ExpireLocks{At: t0.Add(11 * time.Second), Locks: []LockGrant{{Key: "k", Fencing: l.FencingToken + 100}}}).(ExpireResult)
	if len(stale.Freed) != 0 {
		t.Fatalf("expired a grant it did not name: %+v", stale)
	}
	ok := h.apply(CmdExpireLocks, ExpireLocks{At: t0.Add(10 * time.Second), Locks: []LockGrant{{Key: "k", Fencing: l.FencingToken}}}).(ExpireResult)
	if !reflect.DeepEqual(ok.Freed, []string{"k"}) {
		t.Fatalf("expiry at the TTL = %+v", ok)
	}
}

func TestSessionEndReleasesItsLocks(t *testing.T) {
	for _, to := range []state.Status{state.StatusFailed, state.StatusDeregistered} {
		t.Run(string(to), func(t *testing.T) {
			h := newHarness(t)
			h.register("a", "a", t0)
			h.register("b", "b", t0)
			h.acquire("x", "a", time.Minute, t0)
			h.acquire("y", "a", time.Minute, t0)
			h.acquire("z", "b", time.Minute, t0)
			res := h.transition("a", to, t0.Add(time.Second))
			if !reflect.DeepEqual(res.ReleasedLocks, []string{"x", "y"}) {
				t.Fatalf("released %v", res.ReleasedLocks)
			}
			if locks := h.fsm.Store().Locks(""); len(locks) != 1 || locks[0].Key != "z" {
				t.Fatalf("locks left = %+v", locks)
			}
			events, _ := h.fsm.Store().EventsAfter(h.index-1, 0)
			if len(events) != 1 || !reflect.DeepEqual(events[0].ReleasedLocks, []string{"x", "y"}) {
				t.Fatalf("event = %+v", events)
			}
			if r := h.acquire("x", "a", time.Minute, t0.Add(2*time.Second)); r.Err == nil {
				t.Fatal("an ended session acquired a lock")
			}
		})
	}
}

func TestSuspectSessionCannotTakeLocks(t *testing.T) {
	h := newHarness(t)
	h.register("a", "a", t0)
	h.transition("a", state.StatusSuspect, t0.Add(time.Second))
	if r := h.acquire("k", "a", time.Minute, t0.Add(2*time.Second)); !errors.Is(r.Err, state.ErrSessionSuspect) {
		t.Fatalf("acquire by suspect: %v", r.Err)
	}
	if r := h.acquire("k", "nobody", time.Minute, t0); !errors.Is(r.Err, state.ErrSessionNotFound) {
		t.Fatalf("acquire by unknown: %v", r.Err)
	}
}

func TestSnapshotRestoreCarriesEverything(t *testing.T) {
	h := newHarness(t)
	h.register("a", "a", t0)
	h.register("b", "b", t0)
	h.transition("a", state.StatusActive, t0.Add(time.Second))
	h.transition("b", state.StatusFailed, t0.Add(time.Second))
	h.acquire("k", "a", time.Minute, t0.Add(2*time.Second))
	h.apply(CmdSetNode, SetNode{Node: state.Node{ID: "n1", GRPCAddress: "127.0.0.1:7001"}})

	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memorySink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	other := New(state.NewStore(1000))
	if err := other.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(other.Store().Dump())
	want, _ := json.Marshal(h.fsm.Store().Dump())
	if !bytes.Equal(got, want) {
		t.Fatalf("restored state differs:\n got %s\nwant %s", got, want)
	}
	// The restored name index is live-only: "b" failed and may be reused.
	if _, ok := other.Store().SessionByName("b"); ok {
		t.Fatal("failed session still owns its name after restore")
	}
	if addr, ok := other.Store().NodeAddress("n1"); !ok || addr != "127.0.0.1:7001" {
		t.Fatalf("node address after restore = %q, %v", addr, ok)
	}
}

func TestWatchResumeAndTruncation(t *testing.T) {
	h := &harness{t: t, fsm: New(state.NewStore(8))}
	for i := 0; i < 20; i++ {
		id := string(rune('a' + i))
		h.register(id, id, t0)
	}
	if _, truncated := h.fsm.Store().EventsAfter(2, 0); !truncated {
		t.Fatal("resuming from a dropped index is not reported as truncated")
	}
	events, truncated := h.fsm.Store().EventsAfter(18, 0)
	if truncated || len(events) != 2 || events[0].Index != 19 || events[1].Index != 20 {
		t.Fatalf("events after 18 = %+v (truncated %v)", events, truncated)
	}
	if events[0].Session.TokenHash != nil {
		t.Fatal("events carry the token hash")
	}
}

func TestUnknownAndCorruptCommands(t *testing.T) {
	h := newHarness(t)
	h.index++
	if err, _ := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: []byte{200, '{', '}'}}).(error); !errors.Is(err, state.ErrUnknownCommand) {
		t.Fatalf("unknown command: %v", err)
	}
	h.index++
	res := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: []byte{byte(CmdAcquireLock), '{'}}).(LockResult)
	if res.Err == nil {
		t.Fatal("corrupt command applied without error")
	}
	if got := h.fsm.Store().Index(); got != h.index {
		t.Fatalf("applied index = %d, want %d", got, h.index)
	}
}

type memorySink struct{ bytes.Buffer }

func (m *memorySink) ID() string    { return "mem" }
func (m *memorySink) Cancel() error { return nil }
func (m *memorySink) Close() error  { return nil }
