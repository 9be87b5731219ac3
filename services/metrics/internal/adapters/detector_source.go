package adapters

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// DetectorSource implements detect.Source on the events, ratings and
// settings tables. Every table carries the id of the transaction that wrote
// a row (commit_xid); reading only rows below the xmin of a snapshot (the
// horizon) never skips a row that commits late, because every transaction
// below the xmin has ended.
type DetectorSource struct {
	pool *pgxpool.Pool

	// names interns the ids and attributes read (classroom, student, app,
	// item, action, key): a batch repeats a few thousand of them tens of
	// thousands of times, and the engines keep them.
	mu    sync.Mutex
	names map[string]string
}

// maxInterned bounds the interned names; past it they start afresh.
const maxInterned = 1 << 17

// NewDetectorSource returns the source.
func NewDetectorSource(pool *pgxpool.Pool) *DetectorSource {
	return &DetectorSource{pool: pool, names: map[string]string{}}
}

// intern returns b as a string, the same one for the same bytes. Callers
// hold s.mu.
func (s *DetectorSource) intern(b []byte) string {
	if v, ok := s.names[string(b)]; ok {
		return v
	}
	if len(s.names) >= maxInterned {
		clear(s.names)
	}
	v := string(b)
	s.names[v] = v
	return v
}

var _ detect.Source = (*DetectorSource)(nil)

// Horizon is the xmin of a fresh snapshot.
func (s *DetectorSource) Horizon(ctx context.Context) (uint64, error) {
	var h string
	if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&h); err != nil {
		return 0, err
	}
	return parseXid(h)
}

// Read fetches the events, ratings and settings changes of q in one round
// trip, in a transaction of its own whose only purpose is SET LOCAL: the
// reads must walk the commit-order indexes and stop at the limit. Right
// after a burst of ingest the statistics still describe the table as it was
// before (autovacuum analyzes it up to a minute later), the planner expects
// fewer rows than the limit and plans a scan of everything up to the
// horizon plus a sort, on disk past work_mem; working through a backlog of
// 200,000 events that way read and sorted all that remained every round
// (400-700 ms a read against 100 ms for the index scan). With sorts
// disabled the index is used whatever the estimates; a query that had no
// index to follow would still be sorted.
func (s *DetectorSource) Read(ctx context.Context, q detect.SourceQuery) (detect.SourceBatch, error) {
	var out detect.SourceBatch
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = s.read(ctx, tx, q)
		return err
	})
	return out, err
}

func (s *DetectorSource) read(ctx context.Context, tx pgx.Tx, q detect.SourceQuery) (detect.SourceBatch, error) {
	var out detect.SourceBatch
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL enable_sort = off`)
	events := q.After.Xid < q.Horizon
	if events {
		// The global commit-order index (commit_xid, commit_ord); every
		// replica reads every classroom's events and keeps its partitions'.
		// ORDER BY names the table's column: the bare name would be the
		// output column commit_xid::text, a text sort (10000 before 9999)
		// of every row up to the horizon instead of an index range scan
		// stopped at the limit.
		b.Queue(`
			SELECT commit_xid::text, commit_ord, classroom_id, student_id, app_id, item_id, kind, correct, x, y,
			       coalesce(attrs->>'action', ''), coalesce(attrs->>'key', ''), occurred_at
			  FROM metrics.usability_events
			 WHERE (commit_xid, commit_ord) > ($1::text::xid8, $2)
			   AND commit_xid < $3::text::xid8
			 ORDER BY usability_events.commit_xid, commit_ord
			 LIMIT $4`, xidText(q.After.Xid), q.After.Ord, xidText(q.Horizon), q.Limit)
	}
	b.Queue(`
		SELECT commit_xid::text, classroom_id, student_id, app_id, item_id, rating, occurred_at
		  FROM metrics.ratings
		 WHERE commit_xid >= $1::text::xid8 AND commit_xid < $2::text::xid8
		 ORDER BY ratings.commit_xid`, xidText(q.RatingsFrom), xidText(q.Horizon))
	b.Queue(`
		SELECT commit_xid::text, classroom_id, sensitivity, overrides, disabled_indicators, updated_at
		  FROM metrics.detection_settings
		 WHERE commit_xid >= $1::text::xid8 AND commit_xid < $2::text::xid8
		 ORDER BY detection_settings.commit_xid`, xidText(q.SettingsFrom), xidText(q.Horizon))
	res := tx.SendBatch(ctx, b)
	defer func() { _ = res.Close() }()
	if _, err := res.Exec(); err != nil {
		return out, err
	}

	if events {
		rows, err := res.Query()
		if err != nil {
			return out, err
		}
		// Text columns are scanned as the driver's bytes (valid until the
		// next row) and interned: no allocation for a name seen before.
		var xid, classroom, student, app, item, kind, action, key pgtype.DriverBytes
		var ord int32
		var correct *bool
		var x, y *int32
		var at time.Time
		out.Events = make([]detect.Committed, 0, min(q.Limit, 4096))
		s.mu.Lock()
		defer s.mu.Unlock()
		_, err = pgx.ForEachRow(rows, []any{&xid, &ord, &classroom, &student, &app, &item, &kind, &correct, &x, &y, &action, &key, &at}, func() error {
			x64, err := strconv.ParseUint(string(xid), 10, 64)
			if err != nil {
				return err
			}
			c := detect.Committed{Pos: detect.Position{Xid: x64, Ord: ord}, Event: detect.Event{
				ClassroomID: s.intern(classroom), StudentID: s.intern(student), AppID: s.intern(app), ItemID: s.intern(item),
				Kind: eventKinds[string(kind)], Action: s.intern(action), Key: s.intern(key), OccurredAt: at}}
			if correct != nil {
				c.Event.Correct, c.Event.HasCorrect = *correct, true
			}
			if x != nil && y != nil {
				c.Event.X, c.Event.Y, c.Event.HasXY = *x, *y, true
			}
			out.Events = append(out.Events, c)
			return nil
		})
		if err != nil {
			return out, err
		}
		out.Full = len(out.Events) >= q.Limit
	}

	rows, err := res.Query()
	if err != nil {
		return out, err
	}
	var xid string
	var r detect.CommittedRating
	var rating int16
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&xid, &r.Event.ClassroomID, &r.Event.StudentID, &r.Event.AppID, &r.Event.ItemID, &rating, &at}, func() error {
		var err error
		if r.Xid, err = parseXid(xid); err != nil {
			return err
		}
		cr := r
		cr.Event.Kind, cr.Event.Rating, cr.Event.OccurredAt = detect.KindRating, int32(rating), at
		out.Ratings = append(out.Ratings, cr)
		return nil
	})
	if err != nil {
		return out, err
	}

	rows, err = res.Query()
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var xid string
		var c detect.SettingsChange
		if err := scanSettingsRow(rows, &c.Settings, &xid); err != nil {
			return out, err
		}
		if c.Xid, err = parseXid(xid); err != nil {
			return out, err
		}
		out.Settings = append(out.Settings, c)
	}
	return out, rows.Err()
}

var eventKinds = map[string]detect.Kind{
	"attempt": detect.KindAttempt, "error": detect.KindError, "keystroke": detect.KindKeystroke, "click": detect.KindClick,
	"hint": detect.KindHint, "hesitation": detect.KindHesitation, "focus_lost": detect.KindFocusLost, "page_view": detect.KindPageView,
}
