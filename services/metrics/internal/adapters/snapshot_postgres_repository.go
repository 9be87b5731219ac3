package adapters

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// SnapshotPostgresRepository implements usability.SnapshotStore over the
// rollup tables the event writer keeps.
type SnapshotPostgresRepository struct {
	pool *pgxpool.Pool
}

// NewSnapshotPostgresRepository returns the snapshots repository.
func NewSnapshotPostgresRepository(pool *pgxpool.Pool) *SnapshotPostgresRepository {
	return &SnapshotPostgresRepository{pool: pool}
}

var _ usability.SnapshotStore = (*SnapshotPostgresRepository)(nil)

const minuteColumns = `classroom_id, minute, events, active_students, attempts, wrong_attempts, error_events, hesitation_sum, hesitation_count`

func scanMinute(row pgx.CollectableRow) (usability.Snapshot, error) {
	var s usability.Snapshot
	var hesSum float64
	var hesCount int64
	err := row.Scan(&s.ClassroomID, &s.Minute, &s.Events, &s.ActiveStudents, &s.Attempts, &s.WrongAttempts, &s.ErrorEvents, &hesSum, &hesCount)
	if hesCount > 0 {
		s.MeanHesitation = time.Duration(hesSum / float64(hesCount) * float64(time.Second))
	}
	s.Minute = s.Minute.UTC()
	return s, err
}

// Get returns one minute's rollup with its hardest items.
func (r *SnapshotPostgresRepository) Get(ctx context.Context, classroomID string, minute time.Time) (usability.Snapshot, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+minuteColumns+` FROM metrics.classroom_minutes WHERE classroom_id = $1 AND minute = $2`, classroomID, minute)
	if err != nil {
		return usability.Snapshot{}, err
	}
	s, err := pgx.CollectOneRow(rows, scanMinute)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, usability.ErrSnapshotNotFound
	}
	if err != nil {
		return s, err
	}
	snaps := []usability.Snapshot{s}
	err = r.addDetails(ctx, classroomID, snaps)
	return snaps[0], err
}

// List returns a page of rollups in [from, to) after the minute after.
func (r *SnapshotPostgresRepository) List(ctx context.Context, classroomID string, from, to, after time.Time, limit int) ([]usability.Snapshot, error) {
	if !after.IsZero() && !after.Before(from) {
		from = after.Add(time.Minute)
	}
	rows, err := r.pool.Query(ctx, `SELECT `+minuteColumns+` FROM metrics.classroom_minutes
		WHERE classroom_id = $1 AND minute >= $2 AND minute < $3 ORDER BY minute LIMIT $4`, classroomID, from, to, limit)
	if err != nil {
		return nil, err
	}
	snaps, err := pgx.CollectRows(rows, scanMinute)
	if err != nil || len(snaps) == 0 {
		return snaps, err
	}
	return snaps, r.addDetails(ctx, classroomID, snaps)
}

// snapshotMinutes finds snapshots by their minute, and is the span [from, to)
// they cover.
type snapshotMinutes struct {
	byMinute map[int64]*usability.Snapshot
	from, to time.Time
}

// addDetails fills each snapshot's hardest items and then, since they name
// hardest items, its frustration counts. snaps is in minute order, not empty.
func (r *SnapshotPostgresRepository) addDetails(ctx context.Context, classroomID string, snaps []usability.Snapshot) error {
	m := snapshotMinutes{byMinute: make(map[int64]*usability.Snapshot, len(snaps)),
		from: snaps[0].Minute, to: snaps[len(snaps)-1].Minute.Add(time.Minute)}
	for i := range snaps {
		m.byMinute[snaps[i].Minute.Unix()] = &snaps[i]
	}
	if err := r.addHardestItems(ctx, classroomID, m); err != nil {
		return err
	}
	return r.addFrustration(ctx, classroomID, m)
}

// addFrustration fills, from the detector's frustration events (by trigger
// time), each snapshot's frustrated students and each hardest item's
// struggling students, in one query.
func (r *SnapshotPostgresRepository) addFrustration(ctx context.Context, classroomID string, m snapshotMinutes) error {
	rows, err := r.pool.Query(ctx, `
		SELECT date_trunc('minute', triggered_at) AS minute, item_id,
		       count(DISTINCT student_id) FILTER (WHERE indicator IN ('struggle', 'wheel_spinning', 'rapid_guessing')),
		       GROUPING(item_id) = 1,
		       count(DISTINCT student_id)
		  FROM metrics.frustration_events
		 WHERE classroom_id = $1 AND triggered_at >= $2 AND triggered_at < $3 AND student_id <> ''
		 GROUP BY GROUPING SETS ((date_trunc('minute', triggered_at)), (date_trunc('minute', triggered_at), item_id))`, classroomID, m.from, m.to)
	if err != nil {
		return err
	}
	var minute time.Time
	var item *string
	var struggling, students int64
	var whole bool
	_, err = pgx.ForEachRow(rows, []any{&minute, &item, &struggling, &whole, &students}, func() error {
		s := m.byMinute[minute.Unix()]
		switch {
		case s == nil:
		case whole:
			s.FrustratedStudents = students
		case item != nil:
			for i := range s.HardestItems {
				if s.HardestItems[i].ItemID == *item {
					s.HardestItems[i].StrugglingStudents = struggling
				}
			}
		}
		return nil
	})
	return err
}

// addHardestItems fills each snapshot's hardest items (at most
// MaxHardestItems, highest error rate first) in one query.
func (r *SnapshotPostgresRepository) addHardestItems(ctx context.Context, classroomID string, m snapshotMinutes) error {
	rows, err := r.pool.Query(ctx, `
		SELECT minute, item_id, attempts, wrong_attempts, error_events FROM (
			SELECT minute, item_id, attempts, wrong_attempts, error_events,
				row_number() OVER (PARTITION BY minute ORDER BY
					(wrong_attempts + error_events)::float8 / nullif(attempts + error_events, 0) DESC NULLS LAST,
					wrong_attempts + error_events DESC, item_id) AS rank
			FROM metrics.classroom_minute_items
			WHERE classroom_id = $1 AND minute >= $2 AND minute < $3
		) ranked WHERE rank <= $4 ORDER BY minute, rank`, classroomID, m.from, m.to, usability.MaxHardestItems)
	if err != nil {
		return err
	}
	var minute time.Time
	var d usability.ItemDifficulty
	var wrong int64
	_, err = pgx.ForEachRow(rows, []any{&minute, &d.ItemID, &d.Attempts, &wrong, &d.ErrorEvents}, func() error {
		d.Errors = wrong + d.ErrorEvents
		if s := m.byMinute[minute.Unix()]; s != nil {
			s.HardestItems = append(s.HardestItems, d)
		}
		return nil
	})
	return err
}

// Latest is the last minute with events strictly before t.
func (r *SnapshotPostgresRepository) Latest(ctx context.Context, classroomID string, before time.Time) (time.Time, error) {
	var m time.Time
	err := r.pool.QueryRow(ctx, `SELECT minute FROM metrics.classroom_minutes WHERE classroom_id = $1 AND minute < $2
		ORDER BY minute DESC LIMIT 1`, classroomID, before).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return m.UTC(), err
}

// Students reads the classroom's students with events since since from the
// raw events: the partitions before since are pruned, and within the others
// the usability_events indexes lead with classroom_id, so one classroom's
// rows are read, never another's.
func (r *SnapshotPostgresRepository) Students(ctx context.Context, classroomID string, since time.Time, after string, limit int) ([]usability.ActiveStudent, error) {
	rows, err := r.pool.Query(ctx, `
		WITH s AS (
			SELECT student_id, max(occurred_at) AS last_event_at, count(*) AS events
			FROM metrics.usability_events
			WHERE classroom_id = $1 AND occurred_at >= $2 AND student_id > $3
			GROUP BY student_id ORDER BY student_id LIMIT $4)
		SELECT s.student_id, s.last_event_at, s.events,
			CASE WHEN cur.kind = 'page_view' AND cur.action = 'finish' THEN '' ELSE coalesce(cur.item_id, '') END
		FROM s LEFT JOIN LATERAL (
			SELECT e.item_id, e.kind, e.attrs->>'action' AS action FROM metrics.usability_events e
			WHERE e.classroom_id = $1 AND e.student_id = s.student_id AND e.occurred_at >= $2 AND e.item_id <> ''
			ORDER BY e.occurred_at DESC LIMIT 1) cur ON true
		ORDER BY s.student_id`, classroomID, since, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (usability.ActiveStudent, error) {
		var st usability.ActiveStudent
		err := row.Scan(&st.StudentID, &st.LastEventAt, &st.Events, &st.CurrentItemID)
		st.LastEventAt = st.LastEventAt.UTC()
		return st, err
	})
}
