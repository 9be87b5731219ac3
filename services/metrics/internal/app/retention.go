package app

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// Retention keeps the events table's native daily partitions: it creates the
// partitions from the oldest retained day to Ahead past today, and drops
// those wholly older than the retention, together with the rollups of those
// minutes. Every replica runs it; the store serialises the DDL.
type Retention struct {
	store usability.PartitionStore
	// rollupsOnly: TimescaleDB drops the chunks itself; only the rollups of
	// the days gone are pruned here.
	rollupsOnly bool
	retention   time.Duration
	ahead       time.Duration
	interval    time.Duration
	log         *zap.Logger
	now         func() time.Time
}

// NewRetention returns the maintainer; interval is how often it runs.
func NewRetention(store usability.PartitionStore, retention, interval time.Duration, log *zap.Logger) *Retention {
	return &Retention{store: store, retention: retention, ahead: 48 * time.Hour, interval: interval, log: log, now: time.Now}
}

// RollupsOnly leaves partitions to TimescaleDB's retention policy and prunes
// only the rollups.
func (r *Retention) RollupsOnly() { r.rollupsOnly = true }

// SetClock replaces the clock (tests).
func (r *Retention) SetClock(now func() time.Time) { r.now = now }

// Maintain creates and drops partitions once, for the time now.
func (r *Retention) Maintain(ctx context.Context) error {
	now := r.now()
	cutoff := now.Add(-r.retention)
	if r.rollupsOnly {
		return r.pruneRollups(ctx, cutoff)
	}
	created, err := r.store.Ensure(ctx, cutoff, now.Add(r.ahead))
	if err != nil {
		return err
	}
	for _, p := range created {
		r.log.Info("event partition created", zap.String("partition", p.Name), zap.Time("from", p.From), zap.Time("to", p.To))
	}
	dropped, err := r.store.DropBefore(ctx, cutoff)
	if err != nil {
		return err
	}
	for _, p := range dropped {
		r.log.Info("event partition dropped after the retention", zap.String("partition", p.Name), zap.Time("to", p.To), zap.Duration("retention", r.retention))
	}
	return r.pruneRollups(ctx, cutoff)
}

// pruneRollups deletes rollups with the partitions their events were in:
// whole days before the cutoff's.
func (r *Retention) pruneRollups(ctx context.Context, cutoff time.Time) error {
	c := cutoff.UTC()
	_, err := r.store.PruneRollups(ctx, time.Date(c.Year(), c.Month(), c.Day(), 0, 0, 0, 0, time.UTC))
	return err
}

// Run maintains the partitions every interval until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Maintain(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("event partition maintenance failed", zap.Error(err))
			}
		}
	}
}
