package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// ErrShuttingDown answers writes that arrive while the service stops.
var ErrShuttingDown = domainerr.New(domainerr.Unavailable, "the metrics service is shutting down; retry the same events elsewhere")

// errWriteFailed answers the callers of a group whose transaction failed;
// they may retry with the same event ids.
var errWriteFailed = domainerr.New(domainerr.Unavailable, "the events could not be stored; retry with the same event ids (duplicates are detected)")

// GroupCommitConfig tunes the group committer.
type GroupCommitConfig struct {
	// Writers is how many groups may be in flight (each its own transaction).
	Writers int
	// MaxGroupEvents closes a group early.
	MaxGroupEvents int
	// WriteTimeout bounds one group's transaction.
	WriteTimeout time.Duration
}

// GroupCommitter merges concurrent writes into one transaction per group. A
// group leaves as soon as a writer is free; while every writer is busy,
// arriving requests join the next group, so under load a commit carries the
// events of every request that came in during the previous one (the fsync
// is paid once per group, not once per request). Each caller is answered
// after the commit that holds its events.
type GroupCommitter struct {
	cfg     GroupCommitConfig
	store   usability.EventStore
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time

	in      chan *writeRequest
	stopped chan struct{}
	stop    sync.Once
	// OnCommit, when set, is called after each group that stored events.
	OnCommit func()
}

type writeRequest struct {
	events []usability.Event
	done   chan writeResult
	// queued is when the request reached the committer: the time to its
	// group's write is queueing (behind the groups in flight), not storage.
	queued time.Time
}

type writeResult struct {
	inserted []bool
	err      error
}

// NewGroupCommitter returns a committer; Run must be running for writes to
// be answered.
func NewGroupCommitter(cfg GroupCommitConfig, store usability.EventStore, metrics *Metrics, log *zap.Logger) *GroupCommitter {
	if cfg.Writers <= 0 {
		cfg.Writers = 4
	}
	if cfg.MaxGroupEvents <= 0 {
		cfg.MaxGroupEvents = 20000
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	return &GroupCommitter{cfg: cfg, store: store, metrics: metrics, log: log, now: time.Now,
		in: make(chan *writeRequest, 4096), stopped: make(chan struct{})}
}

// Write stores events (already validated; duplicates within them allowed)
// and reports for each whether it was newly stored. An error means nothing
// is acknowledged: the caller retries with the same events.
func (g *GroupCommitter) Write(ctx context.Context, events []usability.Event) ([]bool, error) {
	req := &writeRequest{events: events, done: make(chan writeResult, 1), queued: g.now()}
	select {
	case g.in <- req:
	case <-g.stopped:
		return nil, ErrShuttingDown
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.inserted, r.err
	case <-ctx.Done():
		// The group may still commit; the client's retry will find the
		// events stored and count them as duplicates.
		return nil, ctx.Err()
	}
}

// Run collects and writes groups until ctx ends, then answers what is still
// queued with ErrShuttingDown once the groups in flight are done.
func (g *GroupCommitter) Run(ctx context.Context) {
	groups := make(chan []*writeRequest)
	var wg sync.WaitGroup
	for range g.cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for group := range groups {
				// A panic is logged and its group answered as a failed
				// write, rather than ending the process (every service's
				// under `gaia up`); the writer takes the next group.
				if background.Safely(g.log, "group-commit-writer", background.Options{}, func() { g.writeGroup(group) }) {
					for _, r := range group {
						select { // done holds one answer; one may be there already
						case r.done <- writeResult{err: errWriteFailed}:
						default:
						}
					}
				}
			}
		}()
	}
	g.collect(ctx, groups)
	close(groups)
	wg.Wait()
	g.stop.Do(func() { close(g.stopped) })
	for {
		select {
		case req := <-g.in:
			req.done <- writeResult{err: ErrShuttingDown}
		default:
			return
		}
	}
}

func (g *GroupCommitter) collect(ctx context.Context, groups chan<- []*writeRequest) {
	var group []*writeRequest
	var carry *writeRequest
	size := 0
	add := func(r *writeRequest) bool {
		if size > 0 && size+len(r.events) > g.cfg.MaxGroupEvents {
			carry = r
			return false
		}
		group = append(group, r)
		size += len(r.events)
		return true
	}
	for {
		if len(group) == 0 {
			if carry != nil {
				r := carry
				carry = nil
				add(r)
			} else {
				select {
				case r := <-g.in:
					add(r)
				case <-ctx.Done():
					return
				}
			}
		}
		// Take whatever is already waiting, then hand the group to the first
		// free writer, still accepting arrivals until one is free.
	drain:
		for carry == nil && size < g.cfg.MaxGroupEvents {
			select {
			case r := <-g.in:
				if !add(r) {
					break drain
				}
			default:
				break drain
			}
		}
		if carry != nil || size >= g.cfg.MaxGroupEvents {
			select {
			case groups <- group:
				group, size = nil, 0
			case <-ctx.Done():
				g.fail(group, carry)
				return
			}
			continue
		}
		select {
		case groups <- group:
			group, size = nil, 0
		case r := <-g.in:
			add(r)
		case <-ctx.Done():
			g.fail(group, carry)
			return
		}
	}
}

func (g *GroupCommitter) fail(group []*writeRequest, carry *writeRequest) {
	for _, r := range group {
		r.done <- writeResult{err: ErrShuttingDown}
	}
	if carry != nil {
		carry.done <- writeResult{err: ErrShuttingDown}
	}
}

// writeGroup deduplicates the group in memory (the first copy of an event is
// written, later copies are duplicates), writes it in one transaction and
// answers every request.
func (g *GroupCommitter) writeGroup(group []*writeRequest) {
	start := g.now()
	for _, r := range group {
		g.metrics.groupWait.Observe(start.Sub(r.queued).Seconds())
	}
	var unique []usability.Event
	var refs [][]int // per request, per event: index into unique, or -1
	first := map[usability.Key]int{}
	refs = make([][]int, len(group))
	for ri, r := range group {
		refs[ri] = make([]int, len(r.events))
		for ei := range r.events {
			k := r.events[ei].Key()
			if _, dup := first[k]; dup {
				refs[ri][ei] = -1
				continue
			}
			first[k] = len(unique)
			refs[ri][ei] = len(unique)
			unique = append(unique, r.events[ei])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.WriteTimeout)
	inserted, err := g.store.Write(ctx, unique, start)
	cancel()
	elapsed := g.now().Sub(start)
	g.metrics.observeGroup(len(group), len(unique), elapsed, err)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			g.log.Error("writing a group of events failed", zap.Int("requests", len(group)), zap.Int("events", len(unique)), zap.Error(err))
		}
		for _, r := range group {
			r.done <- writeResult{err: errWriteFailed}
		}
		return
	}
	if g.OnCommit != nil {
		g.OnCommit()
	}
	for ri, r := range group {
		out := make([]bool, len(r.events))
		for ei, u := range refs[ri] {
			out[ei] = u >= 0 && inserted[u]
		}
		r.done <- writeResult{inserted: out}
	}
}
