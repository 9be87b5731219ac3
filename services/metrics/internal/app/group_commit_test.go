package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// slowStore records the size of every group and can fail them all.
type slowStore struct {
	memoryStore
	delay  time.Duration
	fail   bool
	groups []int
}

func (s *slowStore) Write(ctx context.Context, events []usability.Event, at time.Time) ([]bool, error) {
	time.Sleep(s.delay)
	s.mu.Lock()
	s.groups = append(s.groups, len(events))
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return nil, errors.New("disk full")
	}
	return s.memoryStore.Write(ctx, events, at)
}

func runCommitter(t *testing.T, store usability.EventStore, cfg GroupCommitConfig) *GroupCommitter {
	g := NewGroupCommitter(cfg, store, NewMetrics(prometheus.NewRegistry(), nil), zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return g
}

// TestGroupCommitterMergesAndSplits: concurrent writes merge into groups no
// larger than MaxGroupEvents, every caller gets its own answer, a copy of an
// event in another request of the same group is a duplicate.
func TestGroupCommitterMergesAndSplits(t *testing.T) {
	store := &slowStore{memoryStore: memoryStore{stored: map[usability.Key]bool{}}, delay: 5 * time.Millisecond}
	g := runCommitter(t, store, GroupCommitConfig{Writers: 1, MaxGroupEvents: 20})
	const callers = 40
	var wg sync.WaitGroup
	accepted := make([]int, callers)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Seven events each; callers c and c+1 share one event.
			events := []usability.Event{hint(fmt.Sprintf("shared-%d", c/2), "a", "r")}
			for i := range 6 {
				events = append(events, hint(fmt.Sprintf("own-%d-%d", c, i), "a", "r"))
			}
			ins, err := g.Write(context.Background(), events)
			if err != nil {
				t.Error(err)
				return
			}
			for _, ok := range ins {
				if ok {
					accepted[c]++
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range accepted {
		total += n
	}
	if want := callers*6 + callers/2; total != want || len(store.stored) != want {
		t.Fatalf("accepted %d, stored %d; want %d each", total, len(store.stored), want)
	}
	merged := false
	for _, n := range store.groups {
		if n > 20 {
			t.Fatalf("a group of %d events, over MaxGroupEvents 20", n)
		}
		merged = merged || n > 7
	}
	if !merged {
		t.Fatalf("no group merged two requests: %v", store.groups)
	}
}

// TestGroupCommitterFailureAnswersEveryCaller: a failed group answers each
// of its callers UNAVAILABLE (retry the same events); nothing is acknowledged.
func TestGroupCommitterFailureAnswersEveryCaller(t *testing.T) {
	store := &slowStore{memoryStore: memoryStore{stored: map[usability.Key]bool{}}, fail: true}
	g := runCommitter(t, store, GroupCommitConfig{})
	var wg sync.WaitGroup
	for c := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.Write(context.Background(), []usability.Event{hint(fmt.Sprint(c), "a", "r")})
			if domainerr.KindOf(err) != domainerr.Unavailable {
				t.Errorf("caller %d: %v, want UNAVAILABLE", c, err)
			}
		}()
	}
	wg.Wait()
}

// panickyStore panics on its first write.
type panickyStore struct {
	memoryStore
	once sync.Once
}

func (s *panickyStore) Write(ctx context.Context, events []usability.Event, at time.Time) ([]bool, error) {
	s.once.Do(func() { panic("boom") })
	return s.memoryStore.Write(ctx, events, at)
}

// TestGroupCommitWriterSurvivesAPanic: a group-commit writer is a goroutine
// of its own, and a panic in a write ended the process (every service's,
// under `gaia up`). The group that panicked is answered UNAVAILABLE and the
// next write is stored.
func TestGroupCommitWriterSurvivesAPanic(t *testing.T) {
	store := &panickyStore{memoryStore: memoryStore{stored: map[usability.Key]bool{}}}
	g := runCommitter(t, store, GroupCommitConfig{})
	if _, err := g.Write(context.Background(), []usability.Event{hint("1", "a", "r")}); domainerr.KindOf(err) != domainerr.Unavailable {
		t.Fatalf("write that panicked: %v, want UNAVAILABLE", err)
	}
	if _, err := g.Write(context.Background(), []usability.Event{hint("2", "a", "r")}); err != nil {
		t.Fatalf("write after the panic: %v", err)
	}
}
