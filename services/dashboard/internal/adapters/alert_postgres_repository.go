// Package adapters connects the dashboard to the outside: PostgreSQL for
// alerts, interventions, assignments and the follower's checkpoint (with
// LISTEN/NOTIFY to tell every replica that alerts arrived), and the metrics
// service's WatchFrustrationEvents stream.
package adapters

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

// Notification channels: AlertsChannel says alerts were added (no payload);
// AssignmentsChannel says a teacher's classrooms changed (payload: teacher id).
const (
	AlertsChannel      = "dashboard_alerts"
	AssignmentsChannel = "dashboard_assignments"
)

// AlertPostgresRepository implements alert.Repository on the dashboard schema.
type AlertPostgresRepository struct {
	pool *pgxpool.Pool
}

// NewAlertPostgresRepository returns a repository over pool.
func NewAlertPostgresRepository(pool *pgxpool.Pool) *AlertPostgresRepository {
	return &AlertPostgresRepository{pool: pool}
}

var _ alert.Repository = (*AlertPostgresRepository)(nil)

const alertColumns = `classroom_id, alert_id, frustration_event_id, app_id, student_id, item_id, indicator, severity, reasons,
	triggered_at, state, created_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, outcome, resolution_notes`

func scanAlert(row pgx.CollectableRow) (alert.Alert, error) {
	var a alert.Alert
	var ind, sev, outcome int16
	var state string
	var acked, resolved *time.Time
	err := row.Scan(&a.ClassroomID, &a.ID, &a.FrustrationEventID, &a.AppID, &a.StudentID, &a.ItemID, &ind, &sev, &a.Reasons,
		&a.TriggeredAt, &state, &a.CreatedAt, &acked, &a.AcknowledgedBy, &resolved, &a.ResolvedBy, &outcome, &a.ResolutionNotes)
	if err != nil {
		return a, err
	}
	a.Indicator, a.Severity, a.Outcome, a.State = alert.Indicator(ind), alert.Severity(sev), alert.Outcome(outcome), alert.State(state)
	if acked != nil {
		a.AcknowledgedAt = *acked
	}
	if resolved != nil {
		a.ResolvedAt = *resolved
	}
	return a, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// RecordEvents implements alert.Repository. The checkpoint row's lock is held
// for the whole transaction, so batches of different replicas never
// interleave and alert ids commit in order.
func (r *AlertPostgresRepository) RecordEvents(ctx context.Context, events []alert.Event) ([]alert.Alert, error) {
	events = slices.Clone(events)
	slices.SortFunc(events, func(a, b alert.Event) int { return cmp.Compare(a.ID, b.ID) })
	var created []alert.Alert
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		created = created[:0]
		var checkpoint uint64
		if err := tx.QueryRow(ctx, `SELECT after_id FROM dashboard.follower_checkpoint FOR UPDATE`).Scan(&checkpoint); err != nil {
			return fmt.Errorf("lock the checkpoint: %w", err)
		}
		var batch pgx.Batch
		var queued []alert.Event
		for _, e := range events {
			if e.ID <= checkpoint {
				continue
			}
			queued = append(queued, e)
			batch.Queue(`INSERT INTO dashboard.alerts (classroom_id, alert_id, frustration_event_id, app_id, student_id, item_id,
					indicator, severity, reasons, triggered_at)
				VALUES ($1, nextval('dashboard.alert_ids'), $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (classroom_id, frustration_event_id) DO NOTHING
				RETURNING `+alertColumns,
				e.ClassroomID, e.ID, e.AppID, e.StudentID, e.ItemID, int16(e.Indicator), int16(e.Severity), nonNil(e.Reasons), e.TriggeredAt)
		}
		if len(queued) == 0 {
			return nil
		}
		batch.Queue(`UPDATE dashboard.follower_checkpoint SET after_id = $1, updated_at = now()`, queued[len(queued)-1].ID)
		batch.Queue(`SELECT pg_notify($1, '')`, AlertsChannel)
		br := tx.SendBatch(ctx, &batch)
		for range queued {
			rows, _ := br.Query()
			a, err := pgx.CollectRows(rows, scanAlert)
			if err != nil {
				_ = br.Close()
				return fmt.Errorf("insert alert: %w", err)
			}
			created = append(created, a...) // empty when the event already had its alert
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Checkpoint implements alert.Repository.
func (r *AlertPostgresRepository) Checkpoint(ctx context.Context) (uint64, error) {
	var id uint64
	err := r.pool.QueryRow(ctx, `SELECT after_id FROM dashboard.follower_checkpoint`).Scan(&id)
	return id, err
}

// LastAlertID implements alert.Repository.
func (r *AlertPostgresRepository) LastAlertID(ctx context.Context) (uint64, error) {
	var id uint64
	err := r.pool.QueryRow(ctx, `SELECT coalesce(max(alert_id), 0) FROM dashboard.alerts`).Scan(&id)
	return id, err
}

// AlertsAfter implements alert.Repository.
func (r *AlertPostgresRepository) AlertsAfter(ctx context.Context, afterID uint64, limit int) ([]alert.Alert, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+alertColumns+` FROM dashboard.alerts WHERE alert_id > $1 ORDER BY alert_id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanAlert)
}

// GetAlert implements alert.Repository.
func (r *AlertPostgresRepository) GetAlert(ctx context.Context, id uint64) (alert.Alert, error) {
	return r.getAlert(ctx, r.pool, id, "")
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (r *AlertPostgresRepository) getAlert(ctx context.Context, q querier, id uint64, lock string) (alert.Alert, error) {
	rows, err := q.Query(ctx, `SELECT `+alertColumns+` FROM dashboard.alerts WHERE alert_id = $1 `+lock, id)
	if err != nil {
		return alert.Alert{}, err
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAlert)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, alert.ErrNotFound
	}
	if err != nil {
		return a, err
	}
	all := []alert.Alert{a}
	if err := r.loadInterventions(ctx, q, all); err != nil {
		return a, err
	}
	return all[0], nil
}

func (r *AlertPostgresRepository) loadInterventions(ctx context.Context, q querier, alerts []alert.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	classrooms, ids := make([]string, 0, len(alerts)), make([]int64, len(alerts))
	at := make(map[uint64]int, len(alerts))
	for i, a := range alerts {
		if !slices.Contains(classrooms, a.ClassroomID) {
			classrooms = append(classrooms, a.ClassroomID)
		}
		ids[i] = int64(a.ID)
		at[a.ID] = i
	}
	rows, err := q.Query(ctx, `SELECT intervention_id::text, alert_id, teacher_id, action, notes, recorded_at FROM dashboard.interventions
		WHERE classroom_id = ANY($1) AND alert_id = ANY($2) ORDER BY recorded_at, intervention_id`, classrooms, ids)
	if err != nil {
		return err
	}
	ins, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (alert.Intervention, error) {
		var in alert.Intervention
		var action int16
		err := row.Scan(&in.ID, &in.AlertID, &in.TeacherID, &action, &in.Notes, &in.RecordedAt)
		in.Action = alert.Action(action)
		return in, err
	})
	if err != nil {
		return err
	}
	for _, in := range ins {
		i := at[in.AlertID]
		alerts[i].Interventions = append(alerts[i].Interventions, in)
	}
	return nil
}

// UpdateAlert implements alert.Repository.
func (r *AlertPostgresRepository) UpdateAlert(ctx context.Context, id uint64, fn func(*alert.Alert) error) (alert.Alert, error) {
	var out alert.Alert
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		a, err := r.getAlert(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		known := len(a.Interventions)
		if err := fn(&a); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE dashboard.alerts SET state = $3, acknowledged_at = $4, acknowledged_by = $5,
				resolved_at = $6, resolved_by = $7, outcome = $8, resolution_notes = $9
			WHERE classroom_id = $1 AND alert_id = $2`,
			a.ClassroomID, a.ID, string(a.State), nullTime(a.AcknowledgedAt), a.AcknowledgedBy,
			nullTime(a.ResolvedAt), a.ResolvedBy, int16(a.Outcome), a.ResolutionNotes); err != nil {
			return fmt.Errorf("update alert: %w", err)
		}
		for _, in := range a.Interventions[known:] {
			if _, err := tx.Exec(ctx, `INSERT INTO dashboard.interventions (classroom_id, intervention_id, alert_id, teacher_id, action, notes, recorded_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ClassroomID, in.ID, a.ID, in.TeacherID, int16(in.Action), in.Notes, in.RecordedAt); err != nil {
				return fmt.Errorf("insert intervention: %w", err)
			}
		}
		out = a
		return nil
	})
	return out, err
}

// ListAlerts implements alert.Repository.
func (r *AlertPostgresRepository) ListAlerts(ctx context.Context, f alert.Filter, ascending bool) ([]alert.Alert, error) {
	where := []string{"classroom_id = ANY($1)"}
	args := []any{f.Classrooms}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		add("state = ANY(?)", states)
	}
	if f.MinSeverity > 0 {
		add("severity >= ?", int16(f.MinSeverity))
	}
	if f.StudentID != "" {
		add("student_id = ?", f.StudentID)
	}
	if f.AfterID > 0 {
		add("alert_id > ?", int64(f.AfterID))
	}
	if f.UpToID > 0 {
		add("alert_id <= ?", int64(f.UpToID))
	}
	if f.BeforeID > 0 {
		add("alert_id < ?", int64(f.BeforeID))
	}
	order := "DESC"
	if ascending {
		order = "ASC"
	}
	args = append(args, f.Limit)
	rows, err := r.pool.Query(ctx, `SELECT `+alertColumns+` FROM dashboard.alerts WHERE `+strings.Join(where, " AND ")+
		` ORDER BY alert_id `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, err
	}
	alerts, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return nil, err
	}
	return alerts, r.loadInterventions(ctx, r.pool, alerts)
}

// ClassroomAlerts implements alert.Repository.
func (r *AlertPostgresRepository) ClassroomAlerts(ctx context.Context, classroomID string, since time.Time, limit int) ([]alert.Alert, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+alertColumns+` FROM dashboard.alerts
		WHERE classroom_id = $1 AND (state <> 'resolved' OR created_at >= $2)
		ORDER BY alert_id DESC LIMIT $3`, classroomID, since, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanAlert)
}

// Assign implements alert.Repository: assigning again updates the display name.
func (r *AlertPostgresRepository) Assign(ctx context.Context, a alert.Assignment) (alert.Assignment, error) {
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO dashboard.classroom_assignments (classroom_id, teacher_id, display_name)
			VALUES ($1, $2, $3)
			ON CONFLICT (classroom_id, teacher_id) DO UPDATE SET display_name = excluded.display_name
			RETURNING assigned_at`, a.ClassroomID, a.TeacherID, a.DisplayName).Scan(&a.AssignedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, AssignmentsChannel, a.TeacherID)
		return err
	})
	return a, err
}

// Unassign implements alert.Repository.
func (r *AlertPostgresRepository) Unassign(ctx context.Context, teacherID, classroomID string) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM dashboard.classroom_assignments WHERE classroom_id = $1 AND teacher_id = $2`, classroomID, teacherID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return alert.ErrNoAssignment
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, AssignmentsChannel, teacherID)
		return err
	})
}

// TeacherClassrooms implements alert.Repository.
func (r *AlertPostgresRepository) TeacherClassrooms(ctx context.Context, teacherID string) ([]alert.Assignment, error) {
	rows, err := r.pool.Query(ctx, `SELECT teacher_id, classroom_id, display_name, assigned_at FROM dashboard.classroom_assignments
		WHERE teacher_id = $1 ORDER BY classroom_id`, teacherID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[alert.Assignment])
}

// TeacherHasClassroom implements alert.Repository.
func (r *AlertPostgresRepository) TeacherHasClassroom(ctx context.Context, teacherID, classroomID string) (bool, error) {
	var ok bool
	err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dashboard.classroom_assignments WHERE classroom_id = $1 AND teacher_id = $2)`,
		classroomID, teacherID).Scan(&ok)
	return ok, err
}
