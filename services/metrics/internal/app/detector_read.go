package app

// The detector's reads: one horizon-bounded read a round, and the next read
// started ahead while the current batch is judged.

import (
	"context"
	"errors"

	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// readAhead is a horizon and read started on another goroutine for the
// query the next round is expected to make. The round uses it only when its
// own query turns out the same (ownership may have changed in between);
// Read depends on nothing but the query and committed rows below the
// horizon, so the result is what the round would have read itself with a
// horizon taken a moment earlier.
type readAhead struct {
	q    detect.SourceQuery // Horizon and Limit unset
	done chan struct{}
	// Set before done is closed.
	horizon uint64
	read    bool
	batch   detect.SourceBatch
	err     error
}

// fetch takes a horizon and, when anything can lie below it, reads q up to
// it. A read started ahead for the same query is used instead of a new one;
// one for another query is dropped.
func (d *Detector) fetch(ctx context.Context, q detect.SourceQuery) (horizon uint64, read bool, batch detect.SourceBatch, err error) {
	if a := d.ahead; a != nil {
		d.ahead = nil
		<-a.done
		if a.q == q {
			return a.horizon, a.read, a.batch, a.err
		}
	}
	return d.readOnce(ctx, q)
}

func (d *Detector) readOnce(ctx context.Context, q detect.SourceQuery) (uint64, bool, detect.SourceBatch, error) {
	horizon, err := d.source.Horizon(ctx)
	if err != nil {
		return 0, false, detect.SourceBatch{}, err
	}
	if horizon <= q.After.Xid && horizon <= q.RatingsFrom && horizon <= q.SettingsFrom {
		return horizon, false, detect.SourceBatch{}, nil
	}
	q.Horizon, q.Limit = horizon, d.cfg.ReadLimit
	batch, err := d.source.Read(ctx, q)
	if err != nil {
		return 0, false, detect.SourceBatch{}, err
	}
	return horizon, true, batch, nil
}

var errReadAheadPanicked = errors.New("reading ahead panicked")

func (d *Detector) startReadAhead(ctx context.Context, q detect.SourceQuery) {
	a := &readAhead{q: q, done: make(chan struct{})}
	d.ahead = a
	go func() {
		defer close(a.done)
		if background.Safely(d.log, "detector-read-ahead", background.Options{}, func() {
			a.horizon, a.read, a.batch, a.err = d.readOnce(ctx, q)
		}) {
			a.read, a.err = false, errReadAheadPanicked
		}
	}()
}

// dropReadAhead waits for a read started ahead and discards it.
func (d *Detector) dropReadAhead() {
	if a := d.ahead; a != nil {
		d.ahead = nil
		<-a.done
	}
}
