package service_test

import (
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/metrics/internal/adapters"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// TestCommitLogNeverSkipsALateCommit is the outbox gap: a transaction that
// began first but commits last must not be skipped by a reader that already
// saw what committed after it. The reader holds back everything at or above
// the oldest running transaction, so it sees the late one first, then the rest.
func TestCommitLogNeverSkipsALateCommit(t *testing.T) {
	e := newEnv(t, metricstest.Options{})
	pool := e.pool(t)
	log := adapters.NewCommitLog(pool)

	// A: begins, writes an event of the classroom, stays open.
	tx, err := pool.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(e.ctx) }()
	if _, err := tx.Exec(e.ctx, `INSERT INTO metrics.usability_events (classroom_id, app_id, event_id, occurred_at, student_id, kind, received_at, commit_ord)
		VALUES ('room-order', 'app', 'late', now(), 's', 'hint', now(), 0)`); err != nil {
		t.Fatal(err)
	}
	// B: later transactions commit through the service.
	record(t, e.ctx, e.cli, batch("early", "room-order", 5, time.Now()), 5, 0)

	got, pos, err := log.Read(e.ctx, "room-order", adapters.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("while the first transaction is open the reader returned %d events (it would skip the late one)", len(got))
	}
	if err := tx.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}

	// Other tests' transactions on this server may hold xmin back a moment.
	var all []adapters.Committed
	deadline := time.Now().Add(30 * time.Second)
	for len(all) < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of 6 events within 30s", len(all))
		}
		var page []adapters.Committed
		page, pos, err = log.Read(e.ctx, "room-order", pos, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if all[0].Event.EventID != "late" {
		t.Fatalf("first event read %q, want the one that began first (late)", all[0].Event.EventID)
	}
	for i := 1; i < len(all); i++ {
		p, q := all[i-1].Position, all[i].Position
		if q.Xid < p.Xid || (q.Xid == p.Xid && q.Ord <= p.Ord) {
			t.Fatalf("positions out of order: %+v then %+v", p, q)
		}
	}
	if more, _, err := log.Read(e.ctx, "room-order", pos, 100); err != nil || len(more) != 0 {
		t.Fatalf("after the last position: %d more (%v)", len(more), err)
	}
}
