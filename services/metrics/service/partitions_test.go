package service_test

import (
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/gaia-platform/gaia/services/metrics/internal/adapters"
	"github.com/gaia-platform/gaia/services/metrics/internal/app"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// TestPartitionsCreatedAheadAndDroppedAfterRetention runs the native
// partition maintenance with a clock that moves: it creates a partition per
// day from the oldest retained day to two days ahead, drops the days wholly
// past the retention (with their rollups), and keeps what is still retained.
func TestPartitionsCreatedAheadAndDroppedAfterRetention(t *testing.T) {
	e := newEnv(t, metricstest.Options{Retention: 3 * 24 * time.Hour})
	pool := e.pool(t)
	var mode string
	if err := pool.QueryRow(e.ctx, `SELECT mode FROM metrics.event_storage`).Scan(&mode); err != nil || mode != "native" {
		t.Fatalf("storage mode %q (%v), want native (this server has no timescaledb)", mode, err)
	}
	store := adapters.NewPartitionPostgresStore(pool)
	today := adapters.Day(time.Now())

	// At start the service made [today-3d, today+2d] (the day holding the
	// cutoff through the day after tomorrow).
	parts, err := store.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for d := today.AddDate(0, 0, -3); !d.After(today.AddDate(0, 0, 2)); d = d.AddDate(0, 0, 1) {
		want = append(want, adapters.PartitionName(d))
	}
	if got := names(parts); !equal(got, want) {
		t.Fatalf("partitions at start: %v, want %v", got, want)
	}

	// Events in the oldest retained day and today.
	oldest := time.Now().Add(-3*24*time.Hour + time.Hour)
	record(t, e.ctx, e.cli, batch("old", "room-1", 5, oldest), 5, 0)
	record(t, e.ctx, e.cli, batch("new", "room-1", 5, time.Now()), 5, 0)

	// Two days later: two more days ahead, the days past the retention gone.
	r := app.NewRetention(store, 3*24*time.Hour, time.Hour, zaptest.NewLogger(t))
	later := time.Now().Add(48 * time.Hour)
	r.SetClock(func() time.Time { return later })
	if err := r.Maintain(e.ctx); err != nil {
		t.Fatal(err)
	}
	parts, err = store.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	laterDay := adapters.Day(later)
	want = want[:0]
	for d := laterDay.AddDate(0, 0, -3); !d.After(laterDay.AddDate(0, 0, 2)); d = d.AddDate(0, 0, 1) {
		want = append(want, adapters.PartitionName(d))
	}
	if got := names(parts); !equal(got, want) {
		t.Fatalf("partitions two days later: %v, want %v", got, want)
	}
	if n := storedCount(t, pool, `WHERE event_id LIKE 'old-%'`); n != 0 {
		t.Fatalf("%d events past the retention remain", n)
	}
	if n := storedCount(t, pool, `WHERE event_id LIKE 'new-%'`); n != 5 {
		t.Fatalf("%d retained events remain, want 5", n)
	}
	var rollups int
	if err := pool.QueryRow(e.ctx, `SELECT count(*) FROM metrics.classroom_minutes WHERE minute < $1`, laterDay.AddDate(0, 0, -3)).Scan(&rollups); err != nil || rollups != 0 {
		t.Fatalf("%d rollups of dropped days remain (%v)", rollups, err)
	}

	// A partition dropped under a running writer is created again on demand.
	if _, err := pool.Exec(e.ctx, `DROP TABLE metrics.`+adapters.PartitionName(today)); err != nil {
		t.Fatal(err)
	}
	record(t, e.ctx, e.cli, batch("again", "room-1", 3, time.Now()), 3, 0)
}

func names(ps []usability.Partition) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
