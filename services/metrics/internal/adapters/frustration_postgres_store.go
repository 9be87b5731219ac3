package adapters

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// FrustrationNotifyChannel is notified (no payload) whenever frustration
// events commit, so that watchers wake without polling.
const FrustrationNotifyChannel = "metrics_frustration_events"

// frustrationIDLock is the advisory lock every writer of frustration events
// holds from drawing ids to commit: ids then become visible in id order, so
// a watcher resuming after id n can never miss a smaller id committed later.
// (Writes are alerts, a few per second, so one lock costs nothing.)
const frustrationIDLock = 0x6761696164657400 // "gaiadet\0"

// FrustrationPostgresStore implements detect.PartitionStore,
// detect.EventStore and detect.SettingsStore.
type FrustrationPostgresStore struct {
	pool *pgxpool.Pool
}

// NewFrustrationPostgresStore returns the store.
func NewFrustrationPostgresStore(pool *pgxpool.Pool) *FrustrationPostgresStore {
	return &FrustrationPostgresStore{pool: pool}
}

var (
	_ detect.PartitionStore = (*FrustrationPostgresStore)(nil)
	_ detect.EventStore     = (*FrustrationPostgresStore)(nil)
	_ detect.SettingsStore  = (*FrustrationPostgresStore)(nil)
)

func xidText(x uint64) string { return strconv.FormatUint(x, 10) }

func parseXid(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }

// Claim records p's owner unless a newer one is stored, and returns the
// checkpoint. A partition never claimed starts at the current horizon.
func (s *FrustrationPostgresStore) Claim(ctx context.Context, p detect.PartitionRef) (detect.Checkpoint, error) {
	var cp detect.Checkpoint
	var evXid, rtXid string
	var at *time.Time
	err := s.pool.QueryRow(ctx, `
		INSERT INTO metrics.detector_partitions AS d (partitions, partition, fencing_token, owner, event_xid, event_ord, rating_xid)
		VALUES ($1, $2, $3, $4, pg_snapshot_xmin(pg_current_snapshot()), -1, pg_snapshot_xmin(pg_current_snapshot()))
		ON CONFLICT (partitions, partition) DO UPDATE
		   SET fencing_token = EXCLUDED.fencing_token, owner = EXCLUDED.owner, claimed_at = now()
		 WHERE d.fencing_token <= EXCLUDED.fencing_token
		RETURNING event_xid::text, event_ord, rating_xid::text, state, checkpointed_at`,
		p.Partitions, p.Partition, int64(p.Token), p.Owner).Scan(&evXid, &cp.Events.Ord, &rtXid, &cp.State, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, detect.ErrFenced
	}
	if err != nil {
		return cp, fmt.Errorf("claim detector partition %d: %w", p.Partition, err)
	}
	if cp.Events.Xid, err = parseXid(evXid); err != nil {
		return cp, err
	}
	if cp.RatingsXid, err = parseXid(rtXid); err != nil {
		return cp, err
	}
	if at != nil {
		cp.At = *at
	}
	return cp, nil
}

// fence locks the rows of the partitions written (in one order, so that
// writers never deadlock) and returns the ones whose stored token is not the
// writer's: a newer owner has claimed them.
func fence(ctx context.Context, tx pgx.Tx, ws []detect.PartitionFindings) (map[detect.PartitionRef]bool, error) {
	counts := make([]int32, len(ws))
	parts := make([]int32, len(ws))
	for i, w := range ws {
		counts[i], parts[i] = int32(w.Ref.Partitions), int32(w.Ref.Partition)
	}
	rows, err := tx.Query(ctx, `
		SELECT partitions, partition, fencing_token FROM metrics.detector_partitions
		 WHERE (partitions, partition) IN (SELECT * FROM unnest($1::int[], $2::int[]))
		 ORDER BY partitions, partition
		   FOR UPDATE`, counts, parts)
	if err != nil {
		return nil, err
	}
	tokens := map[[2]int]uint64{}
	var count, part int32
	var token int64
	if _, err := pgx.ForEachRow(rows, []any{&count, &part, &token}, func() error {
		tokens[[2]int{int(count), int(part)}] = uint64(token)
		return nil
	}); err != nil {
		return nil, err
	}
	fenced := map[detect.PartitionRef]bool{}
	for _, w := range ws {
		if t, ok := tokens[[2]int{w.Ref.Partitions, w.Ref.Partition}]; !ok || t != w.Ref.Token {
			fenced[w.Ref] = true
		}
	}
	return fenced, nil
}

// Write stores the detections of several partitions in one transaction and
// one INSERT, each partition fenced by its owner's token, under their
// idempotency keys. Ids are drawn in the order given.
func (s *FrustrationPostgresStore) Write(ctx context.Context, ws []detect.PartitionFindings) ([]detect.FrustrationEvent, []int, error) {
	n := 0
	for _, w := range ws {
		n += len(w.Detections)
	}
	if n == 0 {
		return nil, nil, nil
	}
	var out []detect.FrustrationEvent
	var fencedParts []int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out, fencedParts = out[:0], fencedParts[:0]
		fenced, err := fence(ctx, tx, ws)
		if err != nil {
			return err
		}
		// Columns of the rows to insert, as arrays for one unnest.
		var (
			classrooms, keys, students, apps, items, indicators, reasons, evidence []string
			severities                                                             []int16
			triggered                                                              []time.Time
			counts, parts                                                          []int32
			tokens                                                                 []int64
			pending                                                                []*detect.Detection
		)
		for _, w := range ws {
			if fenced[w.Ref] {
				fencedParts = append(fencedParts, w.Ref.Partition)
				continue
			}
			for i := range w.Detections {
				d := &w.Detections[i]
				ev, err := json.Marshal(d.Evidence)
				if err != nil {
					return err
				}
				rs, err := json.Marshal(d.Reasons)
				if err != nil {
					return err
				}
				if d.Reasons == nil {
					rs = []byte("[]")
				}
				classrooms, keys, students, apps, items = append(classrooms, d.ClassroomID), append(keys, d.IdempotencyKey()),
					append(students, d.StudentID), append(apps, d.AppID), append(items, d.ItemID)
				indicators, severities = append(indicators, d.Indicator.String()), append(severities, int16(d.Severity))
				reasons, evidence, triggered = append(reasons, string(rs)), append(evidence, string(ev)), append(triggered, d.TriggeredAt)
				counts, parts, tokens = append(counts, int32(w.Ref.Partitions)), append(parts, int32(w.Ref.Partition)), append(tokens, int64(w.Ref.Token))
				pending = append(pending, d)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(frustrationIDLock)); err != nil {
			return err
		}
		// unnest keeps the arrays' order and ORDER BY n makes nextval
		// follow it. reasons travel as JSON arrays: text[] cannot be
		// unnested one array per row.
		rows, err := tx.Query(ctx, `
			INSERT INTO metrics.frustration_events (classroom_id, event_id, idempotency_key, student_id, app_id, item_id,
				indicator, severity, reasons, evidence, triggered_at, detector_partitions, detector_partition, fencing_token)
			SELECT classroom_id, nextval('metrics.frustration_event_ids'), idempotency_key, student_id, app_id, item_id,
			       indicator, severity, ARRAY(SELECT jsonb_array_elements_text(reasons::jsonb)), evidence::jsonb, triggered_at,
			       partitions, partition, fencing_token
			  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::smallint[], $8::text[],
			              $9::text[], $10::timestamptz[], $11::int[], $12::int[], $13::bigint[])
			       WITH ORDINALITY AS r(classroom_id, idempotency_key, student_id, app_id, item_id, indicator, severity, reasons,
			                            evidence, triggered_at, partitions, partition, fencing_token, n)
			 ORDER BY n
			ON CONFLICT (classroom_id, idempotency_key) DO NOTHING
			RETURNING classroom_id, idempotency_key, event_id, detected_at`,
			classrooms, keys, students, apps, items, indicators, severities, reasons, evidence, triggered, counts, parts, tokens)
		if err != nil {
			return err
		}
		type stored struct {
			id int64
			at time.Time
		}
		got := map[[2]string]stored{}
		var classroom, key string
		var st stored
		if _, err := pgx.ForEachRow(rows, []any{&classroom, &key, &st.id, &st.at}, func() error {
			got[[2]string{classroom, key}] = st
			return nil
		}); err != nil {
			return err
		}
		// Rows already stored (a replay or a takeover found them again)
		// return nothing.
		for i, d := range pending {
			if st, ok := got[[2]string{classrooms[i], keys[i]}]; ok {
				out = append(out, detect.FrustrationEvent{ID: uint64(st.id), Detection: *d, DetectedAt: st.at})
			}
		}
		slices.SortFunc(out, func(a, b detect.FrustrationEvent) int { return cmp.Compare(a.ID, b.ID) })
		if len(out) > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, FrustrationNotifyChannel); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, fencedParts, nil
}

// SaveCheckpoint records the checkpoint, fenced by the owner's token.
func (s *FrustrationPostgresStore) SaveCheckpoint(ctx context.Context, p detect.PartitionRef, cp detect.Checkpoint) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE metrics.detector_partitions
		   SET event_xid = $4::text::xid8, event_ord = $5, rating_xid = $6::text::xid8, state = $7, checkpointed_at = now()
		 WHERE partitions = $1 AND partition = $2 AND fencing_token = $3`,
		p.Partitions, p.Partition, int64(p.Token), xidText(cp.Events.Xid), cp.Events.Ord, xidText(cp.RatingsXid), cp.State)
	if err != nil {
		return fmt.Errorf("save detector checkpoint %d: %w", p.Partition, err)
	}
	if tag.RowsAffected() == 0 {
		return detect.ErrFenced
	}
	return nil
}

const frustrationColumns = `event_id, classroom_id, student_id, app_id, item_id, indicator, severity, reasons, evidence, triggered_at, detected_at`

func scanFrustration(rows pgx.Rows) (detect.FrustrationEvent, error) {
	var e detect.FrustrationEvent
	var id int64
	var ind string
	var sev int16
	var evidence []byte
	if err := rows.Scan(&id, &e.ClassroomID, &e.StudentID, &e.AppID, &e.ItemID, &ind, &sev, &e.Reasons, &evidence, &e.TriggeredAt, &e.DetectedAt); err != nil {
		return e, err
	}
	e.ID, e.Severity = uint64(id), detect.Severity(sev)
	e.Indicator, _ = detect.ParseIndicator(ind)
	e.TriggeredAt, e.DetectedAt = e.TriggeredAt.UTC(), e.DetectedAt.UTC()
	if err := json.Unmarshal(evidence, &e.Evidence); err != nil {
		return e, err
	}
	return e, nil
}

// Reported returns the partition's findings detected since t.
func (s *FrustrationPostgresStore) Reported(ctx context.Context, p detect.PartitionRef, since time.Time) ([]detect.Detection, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+frustrationColumns+` FROM metrics.frustration_events
		WHERE detector_partitions = $1 AND detector_partition = $2 AND detected_at >= $3 ORDER BY event_id`,
		p.Partitions, p.Partition, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []detect.Detection
	for rows.Next() {
		e, err := scanFrustration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e.Detection)
	}
	return out, rows.Err()
}

// List returns the events matching f in id order.
func (s *FrustrationPostgresStore) List(ctx context.Context, f detect.ListFilter) ([]detect.FrustrationEvent, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where = append(where, "event_id > "+arg(int64(f.AfterID)))
	if len(f.ClassroomIDs) > 0 {
		where = append(where, "classroom_id = ANY("+arg(f.ClassroomIDs)+")")
	}
	if f.StudentID != "" {
		where = append(where, "student_id = "+arg(f.StudentID))
	}
	if len(f.Indicators) > 0 {
		names := make([]string, len(f.Indicators))
		for i, ind := range f.Indicators {
			names[i] = ind.String()
		}
		where = append(where, "indicator = ANY("+arg(names)+")")
	}
	if f.MinSeverity > 0 {
		where = append(where, "severity >= "+arg(int16(f.MinSeverity)))
	}
	if !f.From.IsZero() {
		where = append(where, "triggered_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "triggered_at < "+arg(f.To))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+frustrationColumns+` FROM metrics.frustration_events WHERE `+
		strings.Join(where, " AND ")+` ORDER BY event_id LIMIT `+arg(limit), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []detect.FrustrationEvent
	for rows.Next() {
		e, err := scanFrustration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Get returns the classroom's settings, or the defaults and false.
func (s *FrustrationPostgresStore) Get(ctx context.Context, classroomID string) (detect.Settings, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT classroom_id, sensitivity, overrides, disabled_indicators, updated_at
		FROM metrics.detection_settings WHERE classroom_id = $1`, classroomID)
	if err != nil {
		return detect.Settings{}, false, err
	}
	list, err := scanSettings(rows)
	if err != nil || len(list) == 0 {
		return detect.DefaultSettings(classroomID), false, err
	}
	return list[0], true, nil
}

// Put stores the settings.
func (s *FrustrationPostgresStore) Put(ctx context.Context, st detect.Settings) (detect.Settings, error) {
	overrides, err := json.Marshal(st.Overrides)
	if err != nil {
		return st, err
	}
	disabled := make([]string, len(st.Disabled))
	for i, ind := range st.Disabled {
		disabled[i] = ind.String()
	}
	err = s.pool.QueryRow(ctx, `
		INSERT INTO metrics.detection_settings (classroom_id, sensitivity, overrides, disabled_indicators)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (classroom_id) DO UPDATE
		   SET sensitivity = EXCLUDED.sensitivity, overrides = EXCLUDED.overrides,
		       disabled_indicators = EXCLUDED.disabled_indicators, updated_at = now(), commit_xid = pg_current_xact_id()
		RETURNING updated_at`, st.ClassroomID, int16(st.Sensitivity), overrides, disabled).Scan(&st.UpdatedAt)
	st.UpdatedAt = st.UpdatedAt.UTC()
	return st, err
}

func scanSettings(rows pgx.Rows) ([]detect.Settings, error) {
	defer rows.Close()
	var out []detect.Settings
	for rows.Next() {
		var st detect.Settings
		if err := scanSettingsRow(rows, &st, nil); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// scanSettingsRow reads classroom_id, sensitivity, overrides,
// disabled_indicators, updated_at, after commit_xid::text when xid is not nil.
func scanSettingsRow(rows pgx.Rows, st *detect.Settings, xid *string) error {
	var sens int16
	var overrides []byte
	var disabled []string
	dest := []any{&st.ClassroomID, &sens, &overrides, &disabled, &st.UpdatedAt}
	if xid != nil {
		dest = append([]any{xid}, dest...)
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	st.Sensitivity, st.UpdatedAt = detect.Sensitivity(sens), st.UpdatedAt.UTC()
	if err := json.Unmarshal(overrides, &st.Overrides); err != nil {
		return err
	}
	for _, name := range disabled {
		if ind, ok := detect.ParseIndicator(name); ok {
			st.Disabled = append(st.Disabled, ind)
		}
	}
	return nil
}
