package state

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// expiringByScan is LocksExpiringBy the slow way: every lock, by key.
func expiringByScan(s *Store, at time.Time) []Lock {
	out := []Lock{}
	for _, l := range s.Locks("") {
		if !l.ExpiresAt.After(at) {
			out = append(out, l)
		}
	}
	return out
}

// The expiry heap is kept in step by every change to a lock (grant, renewal
// by acquire or renew, release, expiry, a session's end, a restore): after
// any sequence of them it answers what a scan of every lock answers.
func TestLocksExpiringByAgreesWithAScanOfEveryLock(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d"}
	s := storeWith(t, true, names...)
	index := uint64(1000)
	granted := map[string]uint64{}
	found := 0
	for step := range 2000 {
		index++
		at := t0.Add(time.Duration(step) * time.Second)
		key := fmt.Sprintf("k%d", rng.IntN(200))
		owner := names[rng.IntN(len(names))]
		ttl := time.Duration(1+rng.IntN(600)) * time.Second
		switch op := rng.IntN(100); {
		case op < 50:
			if l, err := s.ApplyAcquireLock(index, at, key, owner, ttl); err == nil {
				granted[key] = l.FencingToken
			}
		case op < 70:
			if l, ok := s.Lock(key); ok {
				_, _ = s.ApplyRenewLock(at, key, l.OwnerID, l.FencingToken, ttl)
			}
		case op < 80:
			if l, ok := s.Lock(key); ok {
				_ = s.ApplyReleaseLock(key, l.OwnerID, l.FencingToken)
			}
		case op < 95:
			s.ApplyExpireLock(at, key, granted[key])
		case op < 97:
			// End a session and register a fresh one under the same name.
			s.ApplyTransition(index, at, Transition{SessionID: owner, To: StatusFailed})
			s.ApplyPurge(at.Add(time.Second))
			index++
			if _, err := s.ApplyRegister(index, at, Session{ID: owner, Name: owner}); err != nil {
				t.Fatal(err)
			}
			index++
			s.ApplyTransition(index, at, Transition{SessionID: owner, To: StatusActive, LastBeat: at})
		case op < 98:
			other := NewStore(100)
			other.Restore(s.Dump())
			s = other
		}
		probe := at.Add(time.Duration(rng.IntN(900)-300) * time.Second)
		got, want := s.LocksExpiringBy(probe), expiringByScan(s, probe)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: LocksExpiringBy(%v) = %d locks, a scan finds %d:\n%+v\n%+v", step, probe, len(got), len(want), got, want)
		}
		if len(want) > 0 && len(want) < len(s.Locks("")) {
			found++
		}
	}
	if found < 100 {
		t.Fatalf("only %d probes found some but not all locks due; the test exercises too little", found)
	}
}
