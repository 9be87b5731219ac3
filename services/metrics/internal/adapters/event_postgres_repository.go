// Package adapters connects the metrics service to PostgreSQL: the events
// table and its partitions, ratings and the per-minute classroom rollups.
package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// EventsTable is the events table, schema-qualified.
const EventsTable = "usability_events"

// EventColumns are the columns a writer fills, in COPY order; commit_xid
// takes its default (the writing transaction's id).
var EventColumns = []string{"classroom_id", "app_id", "event_id", "occurred_at", "student_id", "item_id", "skill_id",
	"kind", "correct", "value", "x", "y", "attrs", "received_at", "commit_ord"}

// EventPostgresRepository implements usability.EventStore: one transaction
// per group, COPY first, INSERT … ON CONFLICT when the group holds events
// already stored. The classroom rollups follow off the write path
// (RollupPostgresConsumer).
type EventPostgresRepository struct {
	pool       *pgxpool.Pool
	partitions *PartitionPostgresStore
}

// NewEventPostgresRepository returns the events repository; partitions (nil
// on TimescaleDB) creates a missing daily partition on demand.
func NewEventPostgresRepository(pool *pgxpool.Pool, partitions *PartitionPostgresStore) *EventPostgresRepository {
	return &EventPostgresRepository{pool: pool, partitions: partitions}
}

var _ usability.EventStore = (*EventPostgresRepository)(nil)

// maxWriteAttempts bounds retries of deadlocks and missing partitions.
const maxWriteAttempts = 5

// Write stores the group in one transaction. The fast path COPYs every
// event; a unique violation (an event already stored, by a retry) rolls it
// back and the slow path inserts with ON CONFLICT DO NOTHING and reports
// which rows were new. Either way duplicate detection is one statement for
// the whole group, never a round trip per event.
func (r *EventPostgresRepository) Write(ctx context.Context, events []usability.Event, receivedAt time.Time) ([]bool, error) {
	if len(events) == 0 {
		return nil, nil
	}
	// Take index entries in key order so that concurrent writers of
	// overlapping groups (retries on two replicas) cannot deadlock.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	keys := make([]usability.Key, len(events))
	for i := range events {
		keys[i] = events[i].Key()
	}
	sort.Slice(order, func(a, b int) bool { return keys[order[a]].Less(keys[order[b]]) })
	sorted := make([]usability.Event, len(events))
	for i, j := range order {
		sorted[i] = events[j]
	}
	if r.partitions != nil {
		if err := r.partitions.EnsureFor(ctx, sorted); err != nil {
			return nil, err
		}
	}

	fast := true
	var insertedSorted []bool
	var err error
	for attempt := 1; ; attempt++ {
		if fast {
			err = r.copyGroup(ctx, sorted, receivedAt)
			if err == nil {
				insertedSorted = make([]bool, len(sorted))
				for i := range insertedSorted {
					insertedSorted[i] = true
				}
				break
			}
			if isUniqueViolation(err) {
				fast = false
				continue
			}
		} else {
			insertedSorted, err = r.insertGroup(ctx, sorted, receivedAt)
			if err == nil {
				break
			}
		}
		if attempt >= maxWriteAttempts || !retryable(err) {
			return nil, err
		}
		if isMissingPartition(err) && r.partitions != nil {
			r.partitions.Forget()
			if err := r.partitions.EnsureFor(ctx, sorted); err != nil {
				return nil, err
			}
		}
	}
	inserted := make([]bool, len(events))
	for i, j := range order {
		inserted[j] = insertedSorted[i]
	}
	return inserted, nil
}

// copyGroup is one COPY in its own implicit transaction: pgx returns after
// PostgreSQL's ReadyForQuery, which follows the commit (and its fsync).
// Saving BEGIN and COMMIT saves two round trips per group.
func (r *EventPostgresRepository) copyGroup(ctx context.Context, events []usability.Event, receivedAt time.Time) error {
	_, err := r.pool.CopyFrom(ctx, pgx.Identifier{"metrics", EventsTable}, EventColumns, pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
		return EventRow(&events[i], receivedAt, i)
	}))
	return err
}

func (r *EventPostgresRepository) insertGroup(ctx context.Context, events []usability.Event, receivedAt time.Time) ([]bool, error) {
	n := len(events)
	cls, apps, ids, students, items, skills, kinds := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	occurred := make([]time.Time, n)
	correct := make([]*bool, n)
	values := make([]float64, n)
	xs, ys := make([]*int32, n), make([]*int32, n)
	attrs := make([]*string, n)
	ords := make([]int32, n)
	for i := range events {
		e := &events[i]
		cls[i], apps[i], ids[i], students[i], items[i], skills[i], kinds[i] = e.ClassroomID, e.AppID, e.EventID, e.StudentID, e.ItemID, e.SkillID, string(e.Kind)
		occurred[i], correct[i], values[i], xs[i], ys[i], ords[i] = e.OccurredAt, e.Correct, e.Value, e.X, e.Y, int32(i)
		if b := attrsJSON(e.Attrs); b != nil {
			s := string(b)
			attrs[i] = &s
		}
	}
	inserted := make([]bool, n)
	// One statement, so its own implicit transaction; the rows are read to
	// the end (ReadyForQuery, after the commit) before anyone is answered.
	err := func() error {
		rows, err := r.pool.Query(ctx, `
			INSERT INTO metrics.usability_events (classroom_id, app_id, event_id, occurred_at, student_id, item_id, skill_id,
				kind, correct, value, x, y, attrs, received_at, commit_ord)
			SELECT c, a, e, o, s, i, sk, k, cr, v, x, y, at::jsonb, $14, ord
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::bool[], $10::float8[], $11::int[], $12::int[], $13::text[], $15::int[])
				AS u(c, a, e, o, s, i, sk, k, cr, v, x, y, at, ord)
			ORDER BY ord
			ON CONFLICT (classroom_id, app_id, event_id, occurred_at) DO NOTHING
			RETURNING commit_ord`,
			cls, apps, ids, occurred, students, items, skills, kinds, correct, values, xs, ys, attrs, receivedAt, ords)
		if err != nil {
			return err
		}
		for i := range inserted {
			inserted[i] = false
		}
		var ord int32
		_, err = pgx.ForEachRow(rows, []any{&ord}, func() error {
			inserted[ord] = true
			return nil
		})
		return err
	}()
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// EventRow is the COPY row of e at position ord of its transaction.
func EventRow(e *usability.Event, receivedAt time.Time, ord int) ([]any, error) {
	var x, y any
	if e.X != nil {
		x = *e.X
	}
	if e.Y != nil {
		y = *e.Y
	}
	var correct any
	if e.Correct != nil {
		correct = *e.Correct
	}
	var attrs any
	if b := attrsJSON(e.Attrs); b != nil {
		attrs = b
	}
	return []any{e.ClassroomID, e.AppID, e.EventID, e.OccurredAt, e.StudentID, e.ItemID, e.SkillID,
		string(e.Kind), correct, e.Value, x, y, attrs, receivedAt, int32(ord)}, nil
}

func attrsJSON(m map[string]string) []byte {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		// A map of strings always marshals.
		panic(err)
	}
	return b
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isMissingPartition is "no partition of relation … found for row".
func isMissingPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514"
}

// retryable errors leave nothing behind and may succeed on a new attempt.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40P01", "40001", "23514":
		return true
	}
	return false
}
