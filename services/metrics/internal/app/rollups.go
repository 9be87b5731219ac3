package app

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// Rollups keeps the classroom snapshots current: it applies committed events
// to the per-minute rollups in chunks. From idle it steps at once when this
// replica commits a group (and every poll interval, for other replicas'
// writes); while events keep coming it steps once per poll interval, so the
// rollups cost one transaction per interval rather than one per group; and
// it steps back to back while it is behind by more than a chunk.
type Rollups struct {
	feed    usability.RollupFeed
	chunk   int
	poll    time.Duration
	metrics *Metrics
	log     *zap.Logger
	wake    chan struct{}
}

// NewRollups returns the runner.
func NewRollups(feed usability.RollupFeed, poll time.Duration, metrics *Metrics, log *zap.Logger) *Rollups {
	return &Rollups{feed: feed, chunk: 20000, poll: poll, metrics: metrics, log: log, wake: make(chan struct{}, 1)}
}

// Wake asks for a step soon (events were just committed).
func (r *Rollups) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run applies events until ctx ends.
func (r *Rollups) Run(ctx context.Context) {
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for {
		n, newest, err := r.feed.Step(ctx, r.chunk)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Error("applying events to the classroom rollups failed", zap.Error(err))
		case n > 0:
			r.metrics.rollupEvents.Add(float64(n))
			r.metrics.rollupLag.Set(time.Since(newest).Seconds())
			if n == r.chunk {
				continue // behind: no wait
			}
		default:
			r.metrics.rollupLag.Set(0)
		}
		wake := r.wake
		if n > 0 {
			wake = nil // busy: wait for the tick
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}
