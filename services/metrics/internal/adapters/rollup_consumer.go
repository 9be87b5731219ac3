package adapters

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// RollupConsumer is the checkpoint name of the classroom rollups.
const RollupConsumer = "classroom_rollups"

// RollupPostgresConsumer keeps the per-minute classroom rollups: it reads the
// events committed since its checkpoint, in commit order and only below the
// xmin of a fresh snapshot (so a transaction that commits late is never
// skipped), adds them to the rollups and moves the checkpoint, all in one
// transaction: each event is counted exactly once, whichever replica runs
// the step, and a crash between steps loses nothing.
type RollupPostgresConsumer struct {
	pool *pgxpool.Pool
}

// NewRollupPostgresConsumer returns the consumer.
func NewRollupPostgresConsumer(pool *pgxpool.Pool) *RollupPostgresConsumer {
	return &RollupPostgresConsumer{pool: pool}
}

var _ usability.RollupFeed = (*RollupPostgresConsumer)(nil)

type stepResult struct {
	Events int
	Newest time.Time
}

// Step applies up to limit events and returns how many, and the latest
// receive time among them. Replicas running it at once take turns on the
// checkpoint row's lock.
func (c *RollupPostgresConsumer) Step(ctx context.Context, limit int) (int, time.Time, error) {
	var res stepResult
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		res = stepResult{}
		var xid string
		var ord int32
		if err := tx.QueryRow(ctx, `SELECT commit_xid::text, commit_ord FROM metrics.consumer_checkpoints
			WHERE consumer = $1 FOR UPDATE`, RollupConsumer).Scan(&xid, &ord); err != nil {
			return err
		}
		// ORDER BY names the table's column: the bare name would sort by
		// the output column commit_xid::text, as text (10000 before 9999),
		// and the checkpoint would pass events it never applied.
		rows, err := tx.Query(ctx, `
			SELECT commit_xid::text, commit_ord, classroom_id, occurred_at, student_id, item_id, kind, correct, value, received_at
			FROM metrics.usability_events
			WHERE (commit_xid, commit_ord) > ($1::text::xid8, $2)
			  AND commit_xid < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY usability_events.commit_xid, commit_ord
			LIMIT $3`, xid, ord, limit)
		if err != nil {
			return err
		}
		var events []usability.Event
		var e usability.Event
		var kind string
		var received time.Time
		if _, err := pgx.ForEachRow(rows, []any{&xid, &ord, &e.ClassroomID, &e.OccurredAt, &e.StudentID, &e.ItemID, &kind, &e.Correct, &e.Value, &received}, func() error {
			e.Kind = usability.Kind(kind)
			events = append(events, e)
			e = usability.Event{}
			if received.After(res.Newest) {
				res.Newest = received
			}
			return nil
		}); err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		if err := updateRollups(ctx, tx, events); err != nil {
			return err
		}
		res.Events = len(events)
		_, err = tx.Exec(ctx, `UPDATE metrics.consumer_checkpoints SET commit_xid = $2::text::xid8, commit_ord = $3, updated_at = now()
			WHERE consumer = $1`, RollupConsumer, xid, ord)
		return err
	})
	return res.Events, res.Newest, err
}

// Checkpoint is where the rollups have read up to.
func (c *RollupPostgresConsumer) Checkpoint(ctx context.Context) (Position, error) {
	var xid string
	var p Position
	err := c.pool.QueryRow(ctx, `SELECT commit_xid::text, commit_ord FROM metrics.consumer_checkpoints WHERE consumer = $1`, RollupConsumer).Scan(&xid, &p.Ord)
	if err == nil {
		p.Xid, err = strconv.ParseUint(xid, 10, 64)
	}
	return p, err
}
