package adapters

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// Position is a point in a classroom's committed events: the writing
// transaction's id (xid8) and the row's position in it. The zero Position is
// before everything.
type Position struct {
	Xid uint64
	Ord int32
}

// Committed is an event read back with its position.
type Committed struct {
	Position Position
	Event    usability.Event
}

// CommitLog reads a classroom's committed events in commit order from a
// checkpoint, never skipping a row that commits late: it returns only rows
// written by transactions below the xmin of a fresh snapshot, and every
// transaction below xmin has finished, so nothing can appear later behind a
// position once read.
//
// It walks the global commit-order index (commit_xid, commit_ord) and keeps
// the classroom's rows: there is no per-classroom commit-order index (migration
// metrics/0005 dropped it, a third random B-tree insertion on every write), so
// a read costs the events of every classroom between the position and the
// limit. It is for tests and tools; the consumers (the classroom rollups, the
// frustration detector) read the global order themselves.
type CommitLog struct {
	pool *pgxpool.Pool
}

// NewCommitLog returns the reader.
func NewCommitLog(pool *pgxpool.Pool) *CommitLog { return &CommitLog{pool: pool} }

// Read returns up to limit events of the classroom after the position, in
// (commit_xid, commit_ord) order, and the position to resume from.
func (c *CommitLog) Read(ctx context.Context, classroomID string, after Position, limit int) ([]Committed, Position, error) {
	// ORDER BY names the table's column: the bare name would sort by the
	// output column commit_xid::text, as text (10000 before 9999).
	rows, err := c.pool.Query(ctx, `
		SELECT commit_xid::text, commit_ord, app_id, event_id, occurred_at, student_id, item_id, skill_id, kind, correct, value, x, y
		FROM metrics.usability_events
		WHERE classroom_id = $1
		  AND (commit_xid, commit_ord) > ($2::text::xid8, $3)
		  AND commit_xid < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY usability_events.commit_xid, commit_ord
		LIMIT $4`, classroomID, strconv.FormatUint(after.Xid, 10), after.Ord, limit)
	if err != nil {
		return nil, after, err
	}
	var out []Committed
	var xid string
	var kind string
	var at time.Time
	var cm Committed
	_, err = pgx.ForEachRow(rows, []any{&xid, &cm.Position.Ord, &cm.Event.AppID, &cm.Event.EventID, &at, &cm.Event.StudentID, &cm.Event.ItemID,
		&cm.Event.SkillID, &kind, &cm.Event.Correct, &cm.Event.Value, &cm.Event.X, &cm.Event.Y}, func() error {
		x, err := strconv.ParseUint(xid, 10, 64)
		if err != nil {
			return err
		}
		ev := cm
		ev.Position.Xid = x
		ev.Event.ClassroomID, ev.Event.Kind, ev.Event.OccurredAt = classroomID, usability.Kind(kind), at.UTC()
		out = append(out, ev)
		after = ev.Position
		cm = Committed{}
		return nil
	})
	return out, after, err
}
