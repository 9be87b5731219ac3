package state

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// storeWith returns a store holding one session per name, registered at
// indexes 1, 2, … and made active when active is true.
func storeWith(t *testing.T, active bool, names ...string) *Store {
	t.Helper()
	s := NewStore(100)
	for i, n := range names {
		if _, err := s.ApplyRegister(uint64(i+1), t0, Session{ID: n, Name: n}); err != nil {
			t.Fatalf("register %s: %v", n, err)
		}
		if active {
			if r := s.ApplyTransition(uint64(100+i), t0, Transition{SessionID: n, To: StatusActive, LastBeat: t0}); r.Err != nil {
				t.Fatalf("activate %s: %v", n, r.Err)
			}
		}
	}
	return s
}

func TestApplyRegister(t *testing.T) {
	tests := []struct {
		name    string
		session Session
		wantErr error
	}{
		{"new", Session{ID: "b", Name: "bob"}, nil},
		{"name of a live session", Session{ID: "b", Name: "a"}, ErrNameTaken},
		{"id taken", Session{ID: "a", Name: "other"}, ErrSessionIDTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storeWith(t, false, "a")
			got, err := s.ApplyRegister(7, t0.Add(time.Minute), tt.session)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Status != StatusRegistered || got.RegisteredIndex != 7 || !got.RegisteredAt.Equal(t0.Add(time.Minute)) {
				t.Errorf("registered session = %+v", got)
			}
			if byName, ok := s.SessionByName(tt.session.Name); !ok || byName.ID != tt.session.ID {
				t.Errorf("SessionByName = %+v, %v", byName, ok)
			}
		})
	}
}

func TestApplyTransition(t *testing.T) {
	tests := []struct {
		name      string
		from      []Status // transitions applied first, from registered
		to        Status
		wantErr   error
		wantEvent EventType // "" when no event is recorded
		wantFails int
	}{
		{"first beat", nil, StatusActive, nil, EventActive, 0},
		{"lease ran out", []Status{StatusActive}, StatusSuspect, nil, EventSuspect, 1},
		{"recovered", []Status{StatusActive, StatusSuspect}, StatusActive, nil, EventRecovered, 0},
		{"failed", []Status{StatusActive, StatusSuspect}, StatusFailed, nil, EventFailed, 2},
		{"deregistered", []Status{StatusActive}, StatusDeregistered, nil, EventDeregistered, 0},
		{"to the same status is a no-op", []Status{StatusActive}, StatusActive, nil, "", 0},
		{"failed is final", []Status{StatusFailed}, StatusActive, ErrSessionFailed, "", 1},
		{"deregistered is final", []Status{StatusDeregistered}, StatusActive, ErrSessionGone, "", 0},
		{"unknown status", nil, Status("sleeping"), ErrUnknownCommand, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storeWith(t, false, "a")
			index := uint64(10)
			for _, st := range tt.from {
				if r := s.ApplyTransition(index, t0, Transition{SessionID: "a", To: st}); r.Err != nil {
					t.Fatalf("setup to %s: %v", st, r.Err)
				}
				index++
			}
			before, _ := s.EventsAfter(0, 100)
			r := s.ApplyTransition(index, t0.Add(time.Second), Transition{SessionID: "a", To: tt.to, LastBeat: t0})
			if !errors.Is(r.Err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", r.Err, tt.wantErr)
			}
			after, _ := s.EventsAfter(0, 100)
			switch {
			case tt.wantEvent == "" && len(after) != len(before):
				t.Errorf("recorded %v, want no event", after[len(after)-1].Type)
			case tt.wantEvent != "" && (len(after) != len(before)+1 || after[len(after)-1].Type != tt.wantEvent || after[len(after)-1].Index != index):
				t.Errorf("events %v, want a %s event at %d", after, tt.wantEvent, index)
			}
			if got, _ := s.Session("a"); got.ConsecutiveFailures != tt.wantFails {
				t.Errorf("consecutive failures = %d, want %d", got.ConsecutiveFailures, tt.wantFails)
			}
		})
	}
	if r := NewStore(10).ApplyTransition(1, t0, Transition{SessionID: "nobody", To: StatusActive}); !errors.Is(r.Err, ErrSessionNotFound) {
		t.Errorf("transition of an unknown session: %v", r.Err)
	}
}

// A session that ends takes its locks with it, in the same command, and its
// name becomes free.
func TestEndingASessionReleasesItsLocksAndName(t *testing.T) {
	for _, end := range []Status{StatusFailed, StatusDeregistered} {
		t.Run(string(end), func(t *testing.T) {
			s := storeWith(t, true, "a", "b")
			for i, k := range []string{"k1", "k2"} {
				if _, err := s.ApplyAcquireLock(uint64(200+i), t0, k, "a", time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.ApplyAcquireLock(210, t0, "k3", "b", time.Minute); err != nil {
				t.Fatal(err)
			}
			r := s.ApplyTransition(300, t0, Transition{SessionID: "a", To: end})
			if r.Err != nil || !reflect.DeepEqual(r.ReleasedLocks, []string{"k1", "k2"}) {
				t.Fatalf("transition = %+v, want k1 and k2 released", r)
			}
			if locks := s.Locks(""); len(locks) != 1 || locks[0].Key != "k3" {
				t.Errorf("locks left = %+v, want only b's k3", locks)
			}
			if _, err := s.ApplyRegister(301, t0, Session{ID: "a2", Name: "a"}); err != nil {
				t.Errorf("the ended session's name is still taken: %v", err)
			}
		})
	}
}

func TestLockCommands(t *testing.T) {
	type step struct {
		op      string // acquire, renew, release, expire
		session string
		fencing uint64
		at      time.Duration
		ttl     time.Duration
		wantErr error
		// for expire: whether the lock was freed
		wantFreed bool
	}
	const grant = 500 // the index of the first acquire, its fencing token
	tests := []struct {
		name      string
		steps     []step
		wantOwner string // "" when the lock ends free
		wantExp   time.Duration
	}{
		{"acquire a free lock", []step{{op: "acquire", session: "a", ttl: time.Minute}}, "a", time.Minute},
		{"held by another", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "acquire", session: "b", ttl: time.Minute, wantErr: ErrLockHeld}}, "a", time.Minute},
		{"the holder re-acquires: renewed, same token", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "acquire", session: "a", at: 30 * time.Second, ttl: time.Minute}}, "a", 90 * time.Second},
		{"renew", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "renew", session: "a", fencing: grant, at: 10 * time.Second}}, "a", 70 * time.Second},
		{"renew with a stale token", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "renew", session: "a", fencing: grant - 1, wantErr: ErrStaleFencing}}, "a", time.Minute},
		{"renew by another", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "renew", session: "b", fencing: grant, wantErr: ErrNotLockOwner}}, "a", time.Minute},
		{"release", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "release", session: "a", fencing: grant}}, "", 0},
		{"release a free lock", []step{{op: "release", session: "a", fencing: grant, wantErr: ErrLockNotFound}}, "", 0},
		{"release with a stale token", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "release", session: "a", fencing: 1, wantErr: ErrStaleFencing}}, "a", time.Minute},
		{"expire before the TTL is refused", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "expire", fencing: grant, at: 59 * time.Second}}, "a", time.Minute},
		{"expire at the TTL", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "expire", fencing: grant, at: time.Minute, wantFreed: true}}, "", 0},
		{"expire of an older grant is refused", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "expire", fencing: grant - 1, at: time.Hour}}, "a", time.Minute},
		{"a renewal postpones expiry", []step{{op: "acquire", session: "a", ttl: time.Minute}, {op: "renew", session: "a", fencing: grant, at: 50 * time.Second}, {op: "expire", fencing: grant, at: time.Minute}}, "a", 110 * time.Second},
		{"a suspect session takes no lock", []step{{op: "suspect", session: "a"}, {op: "acquire", session: "a", ttl: time.Minute, wantErr: ErrSessionSuspect}}, "", 0},
		{"an unknown session takes no lock", []step{{op: "acquire", session: "x", ttl: time.Minute, wantErr: ErrSessionNotFound}}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storeWith(t, true, "a", "b")
			index := uint64(grant)
			for i, st := range tt.steps {
				at := t0.Add(st.at)
				var err error
				switch st.op {
				case "acquire":
					_, err = s.ApplyAcquireLock(index, at, "k", st.session, st.ttl)
					index++
				case "renew":
					_, err = s.ApplyRenewLock(at, "k", st.session, st.fencing, 0)
				case "release":
					err = s.ApplyReleaseLock("k", st.session, st.fencing)
				case "expire":
					if freed := s.ApplyExpireLock(at, "k", st.fencing); freed != st.wantFreed {
						t.Fatalf("step %d: expire freed = %v, want %v", i, freed, st.wantFreed)
					}
				case "suspect":
					err = s.ApplyTransition(index, at, Transition{SessionID: st.session, To: StatusSuspect}).Err
					index++
				}
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %d (%s by %s): err = %v, want %v", i, st.op, st.session, err, st.wantErr)
				}
			}
			l, held := s.Lock("k")
			switch {
			case tt.wantOwner == "" && held:
				t.Errorf("lock held by %s, want free", l.OwnerID)
			case tt.wantOwner != "" && (!held || l.OwnerID != tt.wantOwner || l.FencingToken != grant || !l.ExpiresAt.Equal(t0.Add(tt.wantExp))):
				t.Errorf("lock = %+v (held %v), want %s's grant %d expiring at +%v", l, held, tt.wantOwner, grant, tt.wantExp)
			}
		})
	}
}

func TestApplyPurgeForgetsOnlyFinalSessionsPastTheCutoff(t *testing.T) {
	s := storeWith(t, true, "live", "old", "recent")
	s.ApplyTransition(10, t0, Transition{SessionID: "old", To: StatusFailed})
	s.ApplyTransition(11, t0.Add(time.Hour), Transition{SessionID: "recent", To: StatusDeregistered})
	if n := s.ApplyPurge(t0.Add(time.Minute)); n != 1 {
		t.Fatalf("purged %d, want 1", n)
	}
	for id, want := range map[string]bool{"live": true, "old": false, "recent": true} {
		if _, ok := s.Session(id); ok != want {
			t.Errorf("session %s kept = %v, want %v", id, ok, want)
		}
	}
}

// A dump restored into another store gives the same state: this is what a
// follower installing a snapshot relies on.
func TestDumpRestoreRoundTrip(t *testing.T) {
	s := storeWith(t, true, "a", "b")
	if _, err := s.ApplyAcquireLock(500, t0, "k", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	s.ApplySetNode(Node{ID: "node-1", GRPCAddress: "10.0.0.1:7001"})
	s.SetIndex(600)
	other := NewStore(100)
	other.Restore(s.Dump())
	if !reflect.DeepEqual(other.Sessions(), s.Sessions()) || !reflect.DeepEqual(other.Locks(""), s.Locks("")) {
		t.Errorf("restored state differs:\n%+v\n%+v", other.Sessions(), other.Locks(""))
	}
	if addr, ok := other.NodeAddress("node-1"); !ok || addr != "10.0.0.1:7001" {
		t.Errorf("node address after restore = %q, %v", addr, ok)
	}
	if other.Index() != 600 {
		t.Errorf("index after restore = %d, want 600", other.Index())
	}
	if _, ok := other.SessionByName("a"); !ok {
		t.Error("the name index was not rebuilt")
	}
}

// A snapshot carries the state and only the newest events: a node restored
// from it resumes watchers within that tail and tells older ones they were
// truncated (they start over from a snapshot), never hands them a gap.
func TestSnapshotCarriesABoundedHistory(t *testing.T) {
	s := NewStoreRetaining(1000, 10)
	for i := 1; i <= 50; i++ {
		id := fmt.Sprintf("s%02d", i)
		if _, err := s.ApplyRegister(uint64(i), t0, Session{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	d := s.Dump()
	if len(d.Events) != 10 || d.Events[0].Index != 41 || d.DroppedThrough != 40 {
		t.Fatalf("dump holds %d events from index %d, dropped through %d; want 10 from 41, dropped through 40",
			len(d.Events), d.Events[0].Index, d.DroppedThrough)
	}
	if len(d.Sessions) != 50 {
		t.Fatalf("dump holds %d sessions, want all 50: the bound is on history, not state", len(d.Sessions))
	}
	// The store itself keeps its whole in-memory history.
	if got, truncated := s.EventsAfter(0, 0); truncated || len(got) != 50 {
		t.Fatalf("live store: %d events, truncated %v; want 50, false", len(got), truncated)
	}

	other := NewStoreRetaining(1000, 10)
	other.Restore(d)
	if _, truncated := other.EventsAfter(39, 0); !truncated {
		t.Error("a watcher resuming before the snapshot's history was not told it was truncated")
	}
	got, truncated := other.EventsAfter(40, 0)
	if truncated || len(got) != 10 || got[0].Index != 41 {
		t.Errorf("resume after 40: %d events, truncated %v; want 10 from 41", len(got), truncated)
	}

	// A store with a smaller in-memory retention keeps only what it may.
	small := NewStoreRetaining(4, 4)
	small.Restore(d)
	if got, truncated := small.EventsAfter(46, 0); truncated || len(got) != 4 || got[0].Index != 47 {
		t.Errorf("restore into retention 4: %d events, truncated %v", len(got), truncated)
	}
	if _, truncated := small.EventsAfter(45, 0); !truncated {
		t.Error("restore into retention 4: a resume at 45 was not truncated")
	}
}
