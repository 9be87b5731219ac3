package app

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A caller that arrives while a round is in flight must not be answered by
// it: that round's quorum contact may predate the caller.
func TestLeaderConfirmationNeverAnswersWithARoundThatBeganEarlier(t *testing.T) {
	release := make(chan error)
	started := make(chan int, 4)
	var rounds atomic.Int32
	l := newLeaderConfirmer(func() error {
		started <- int(rounds.Add(1))
		return <-release
	})
	l.maxInFlight = 1 // so that the second caller must wait for round 1 to end

	first := make(chan error, 1)
	go func() { first <- l.confirm(context.Background()) }()
	if n := <-started; n != 1 {
		t.Fatalf("round %d started first", n)
	}
	second := make(chan error, 1)
	go func() { second <- l.confirm(context.Background()) }()
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.waiting) == 1 })

	deposed := errors.New("round 1: deposed")
	release <- deposed // round 1 vouched before the second caller asked
	if err := <-first; !errors.Is(err, deposed) {
		t.Fatalf("first caller: %v, want round 1's answer", err)
	}
	if n := <-started; n != 2 {
		t.Fatalf("round %d started for the second caller, want 2", n)
	}
	release <- nil
	if err := <-second; err != nil {
		t.Fatalf("second caller: %v, want round 2's answer (nil)", err)
	}
}

// Callers waiting at the same moment share one round.
func TestLeaderConfirmationSharesARoundBetweenWaitingCallers(t *testing.T) {
	release := make(chan struct{})
	var rounds atomic.Int32
	l := newLeaderConfirmer(func() error {
		rounds.Add(1)
		<-release
		return nil
	})
	l.maxInFlight = 1
	// Round 1 holds the line while 50 callers queue for round 2.
	go func() { _ = l.confirm(context.Background()) }()
	waitFor(t, func() bool { return rounds.Load() == 1 })
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.confirm(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.waiting) == 50 })
	close(release)
	wg.Wait()
	if n := rounds.Load(); n != 2 {
		t.Errorf("%d rounds for 51 callers in two waves, want 2", n)
	}
}

// A caller that arrives while a round is in flight starts the next round at
// once (up to maxInFlight), rather than waiting for the first to end.
func TestLeaderConfirmationStartsTheNextRoundWithoutWaiting(t *testing.T) {
	release := make(chan struct{})
	var rounds atomic.Int32
	l := newLeaderConfirmer(func() error {
		rounds.Add(1)
		<-release
		return nil
	})
	l.maxInFlight = 2
	answered := make(chan error, 3)
	for range 3 {
		go func() { answered <- l.confirm(context.Background()) }()
		n := rounds.Load()
		waitFor(t, func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return rounds.Load() > n || l.inFlight == l.maxInFlight && len(l.waiting) > 0
		})
	}
	if n := rounds.Load(); n != 2 {
		t.Fatalf("%d rounds in flight for 3 callers with at most 2, want 2", n)
	}
	close(release)
	for range 3 {
		if err := <-answered; err != nil {
			t.Fatal(err)
		}
	}
	if n := rounds.Load(); n != 3 {
		t.Errorf("%d rounds in all, want 3 (the third caller came after both began)", n)
	}
}

func TestLeaderConfirmationGivesUpWithItsContext(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	l := newLeaderConfirmer(func() error { <-never; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.confirm(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("confirm with a round that never ends: %v, want the context's deadline", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
