package app

import (
	"context"
	"sync"
)

// leaderConfirmer answers "does this node still lead?" with a quorum's word,
// sharing one round between every caller waiting at the same moment, as a
// read index does: a heartbeat storm costs one quorum round trip per batch,
// not per beat.
//
// A caller is answered by a round that began after it asked, never by one
// already in flight: that round's quorum contact may predate the caller, and
// a node frozen in between (a GC pause, a stopped VM) would then vouch for
// itself with a word given before another leader was elected.
//
// Up to maxInFlight rounds run at once: a caller that arrives while rounds
// are in flight starts the next one at once rather than waiting for them to
// end, so that a beat waits about one round, not two. (Raft batches the
// concurrent rounds' entries into one log write.)
type leaderConfirmer struct {
	verify      func() error // one quorum round
	maxInFlight int

	mu       sync.Mutex
	waiting  []chan error // callers for the next round
	inFlight int          // rounds running
	starting bool         // a round is about to take the waiting callers
}

// defaultRoundsInFlight bounds the confirmation rounds running at once.
const defaultRoundsInFlight = 4

func newLeaderConfirmer(verify func() error) *leaderConfirmer {
	return &leaderConfirmer{verify: verify, maxInFlight: defaultRoundsInFlight}
}

// confirm waits for a round that began after the call and returns its
// error, or ctx's.
func (l *leaderConfirmer) confirm(ctx context.Context) error {
	done := make(chan error, 1)
	l.mu.Lock()
	l.waiting = append(l.waiting, done)
	l.startLocked()
	l.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startLocked starts a round for the waiting callers unless one is about
// to start anyway or maxInFlight are running (the first to end starts it).
func (l *leaderConfirmer) startLocked() {
	if len(l.waiting) == 0 || l.starting || l.inFlight >= l.maxInFlight {
		return
	}
	l.starting = true
	l.inFlight++
	go l.round()
}

// round takes every caller waiting when it begins, asks, answers them, and
// starts the next round if callers came meanwhile and none is starting.
func (l *leaderConfirmer) round() {
	l.mu.Lock()
	batch := l.waiting
	l.waiting = nil
	l.starting = false
	l.mu.Unlock()

	err := l.verify()
	for _, done := range batch {
		done <- err
	}

	l.mu.Lock()
	l.inFlight--
	l.startLocked()
	l.mu.Unlock()
}
