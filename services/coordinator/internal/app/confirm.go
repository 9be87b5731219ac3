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
type leaderConfirmer struct {
	verify func() error // one quorum round (raft.VerifyLeader)

	mu      sync.Mutex
	waiting []chan error // callers for the next round
	running bool         // a goroutine is running rounds
}

func newLeaderConfirmer(verify func() error) *leaderConfirmer {
	return &leaderConfirmer{verify: verify}
}

// confirm waits for a round that began after the call and returns its
// error, or ctx's.
func (l *leaderConfirmer) confirm(ctx context.Context) error {
	done := make(chan error, 1)
	l.mu.Lock()
	l.waiting = append(l.waiting, done)
	if !l.running {
		l.running = true
		go l.rounds()
	}
	l.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rounds runs one round for everyone waiting, then the next for those who
// came while it ran, until nobody waits.
func (l *leaderConfirmer) rounds() {
	for {
		l.mu.Lock()
		batch := l.waiting
		l.waiting = nil
		if len(batch) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		err := l.verify()
		for _, done := range batch {
			done <- err
		}
	}
}
