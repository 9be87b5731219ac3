package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/metrics/internal/adapters"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
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

// TestCommitOrderReadersSortXidsAsNumbers: the readers selected
// commit_xid::text and ORDER BY commit_xid, which names that output column,
// so they sorted transaction ids as text. Past a power of ten (10000 before
// 9998) a read cut at its limit ended on the larger ids, and the next read,
// after that position, skipped the smaller ones for good: the detector
// never judged them and the rollups never counted them. Events written by
// transactions 9998, 9999, 10000 and 10001 (the power of ten below the
// server's current ids) are read two at a time by each reader.
func TestCommitOrderReadersSortXidsAsNumbers(t *testing.T) {
	e := newEnv(t, metricstest.Options{})
	pool := e.pool(t)
	e.svc.Stop() // its rollup consumer would read everything in one step
	source := adapters.NewDetectorSource(pool)
	horizon, err := source.Horizon(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := uint64(10)
	for p*10+1 < horizon {
		p *= 10
	}
	if p+1 >= horizon {
		t.Fatalf("the server's transaction ids (horizon %d) are too young for this test", horizon)
	}
	want := []uint64{p - 2, p - 1, p, p + 1}
	for _, xid := range []uint64{p, p + 1, p - 2, p - 1} {
		if _, err := pool.Exec(e.ctx, `INSERT INTO metrics.usability_events
			(classroom_id, app_id, event_id, occurred_at, student_id, kind, received_at, commit_xid, commit_ord)
			VALUES ('room-digits', 'app', $1, now(), 's', 'hint', now(), $2::text::xid8, 0)`,
			fmt.Sprint("xid-", xid), fmt.Sprint(xid)); err != nil {
			t.Fatal(err)
		}
	}

	var fromLog []uint64
	var pos adapters.Position
	for range len(want) {
		page, next, err := adapters.NewCommitLog(pool).Read(e.ctx, "room-digits", pos, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			fromLog = append(fromLog, c.Position.Xid)
		}
		pos = next
	}
	if fmt.Sprint(fromLog) != fmt.Sprint(want) {
		t.Errorf("the commit log read transactions %v, want %v", fromLog, want)
	}

	var fromSource []uint64
	q := detect.SourceQuery{RatingsFrom: horizon, SettingsFrom: horizon, Horizon: horizon, Limit: 2}
	for range len(want) {
		b, err := source.Read(e.ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b.Events {
			fromSource = append(fromSource, c.Pos.Xid)
		}
		if len(b.Events) > 0 {
			q.After = b.Events[len(b.Events)-1].Pos
		}
	}
	if fmt.Sprint(fromSource) != fmt.Sprint(want) {
		t.Errorf("the detector read transactions %v, want %v", fromSource, want)
	}

	rollups := adapters.NewRollupPostgresConsumer(pool)
	for range len(want) {
		if _, _, err := rollups.Step(e.ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	var counted int64
	if err := pool.QueryRow(e.ctx, `SELECT coalesce(sum(events), 0) FROM metrics.classroom_minutes WHERE classroom_id = 'room-digits'`).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	if counted != int64(len(want)) {
		t.Errorf("the rollups counted %d of the %d events", counted, len(want))
	}
}
