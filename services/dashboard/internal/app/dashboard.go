package app

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

// overviewLookback is how far back the overview reads resolved alerts (for
// each student's last activity and current item); unresolved ones are read
// whatever their age.
const overviewLookback = time.Hour

// maxOverviewAlerts bounds the alerts one overview reads.
const maxOverviewAlerts = 5000

// ActiveStudent is a student's recent activity as the metrics service saw it.
type ActiveStudent struct {
	StudentID     string
	LastEventAt   time.Time
	CurrentItemID string
}

// StudentSource lists a classroom's recently active students (the metrics
// service's ListClassroomStudents).
type StudentSource interface {
	ActiveStudents(ctx context.Context, classroomID string) ([]ActiveStudent, error)
}

// Dashboard is the teacher-facing use cases.
type Dashboard struct {
	repo     alert.Repository
	hub      *Hub
	students StudentSource
	enabled  bool
	now      func() time.Time
}

// NewDashboard returns the use cases; enabled is TEACHER_DASHBOARD_ENABLED;
// students (nil: none) adds the students without alerts to overviews.
func NewDashboard(repo alert.Repository, hub *Hub, students StudentSource, enabled bool) *Dashboard {
	return &Dashboard{repo: repo, hub: hub, students: students, enabled: enabled, now: time.Now}
}

// AlertsEnabled says whether new alerts are raised.
func (d *Dashboard) AlertsEnabled() bool { return d.enabled }

// TeacherHasClassroom answers whether a classroom is assigned to a teacher
// (the hook internal/auth asks for teachers' classroom scope).
func (d *Dashboard) TeacherHasClassroom(ctx context.Context, teacherID, classroomID string) (bool, error) {
	return d.repo.TeacherHasClassroom(ctx, teacherID, classroomID)
}

// Assign gives a teacher a classroom (again: updates its display name).
func (d *Dashboard) Assign(ctx context.Context, a alert.Assignment) (alert.Assignment, error) {
	out, err := d.repo.Assign(ctx, a)
	if err != nil {
		return out, err
	}
	return out, d.hub.TeacherChanged(ctx, a.TeacherID)
}

// Unassign takes a classroom from a teacher; live subscriptions stop
// receiving its alerts at once.
func (d *Dashboard) Unassign(ctx context.Context, teacherID, classroomID string) error {
	if err := d.repo.Unassign(ctx, teacherID, classroomID); err != nil {
		return err
	}
	return d.hub.TeacherChanged(ctx, teacherID)
}

// TeacherClassrooms lists a teacher's assignments.
func (d *Dashboard) TeacherClassrooms(ctx context.Context, teacherID string) ([]alert.Assignment, error) {
	return d.repo.TeacherClassrooms(ctx, teacherID)
}

// classrooms resolves the classrooms a teacher asks for: every assigned one
// when requested is empty, else requested, each of which must be assigned.
func (d *Dashboard) classrooms(ctx context.Context, teacherID string, requested []string) ([]string, error) {
	assigned, err := d.repo.TeacherClassrooms(ctx, teacherID)
	if err != nil {
		return nil, err
	}
	if err := checkAssigned(teacherID, requested, assigned); err != nil {
		return nil, err
	}
	if len(requested) > 0 {
		return requested, nil
	}
	out := make([]string, len(assigned))
	for i, a := range assigned {
		out[i] = a.ClassroomID
	}
	return out, nil
}

// ListAlerts lists a teacher's alerts newest first; f.Classrooms empty means
// all of the teacher's. f.BeforeID pages.
func (d *Dashboard) ListAlerts(ctx context.Context, teacherID string, f alert.Filter) ([]alert.Alert, error) {
	var err error
	if f.Classrooms, err = d.classrooms(ctx, teacherID, f.Classrooms); err != nil || len(f.Classrooms) == 0 {
		return nil, err
	}
	return d.repo.ListAlerts(ctx, f, false)
}

// Subscribe streams a teacher's alerts (see Hub.Subscribe).
func (d *Dashboard) Subscribe(ctx context.Context, teacherID string, classrooms []string, afterID uint64, minSeverity alert.Severity, out Subscriber) error {
	return d.hub.Subscribe(ctx, teacherID, classrooms, afterID, minSeverity, out)
}

// act runs fn on an alert of a classroom assigned to teacherID.
func (d *Dashboard) act(ctx context.Context, alertID uint64, teacherID string, fn func(*alert.Alert) error) (alert.Alert, error) {
	a, err := d.repo.GetAlert(ctx, alertID)
	if err != nil {
		return a, err
	}
	// The caller's credential, when the server checks credentials, must reach
	// the alert's classroom too (the policy table's rule for these RPCs).
	if err := auth.RequireClassroom(ctx, a.ClassroomID); err != nil {
		return a, err
	}
	ok, err := d.repo.TeacherHasClassroom(ctx, teacherID, a.ClassroomID)
	if err != nil {
		return a, err
	}
	if !ok {
		return a, alert.NotAssigned(teacherID, a.ClassroomID)
	}
	return d.repo.UpdateAlert(ctx, alertID, fn)
}

// Acknowledge marks an alert seen.
func (d *Dashboard) Acknowledge(ctx context.Context, alertID uint64, teacherID string) (alert.Alert, error) {
	now := d.now()
	return d.act(ctx, alertID, teacherID, func(a *alert.Alert) error { return a.Acknowledge(teacherID, now) })
}

// Resolve closes an alert with an outcome.
func (d *Dashboard) Resolve(ctx context.Context, alertID uint64, teacherID string, outcome alert.Outcome, notes string) (alert.Alert, error) {
	now := d.now()
	return d.act(ctx, alertID, teacherID, func(a *alert.Alert) error { return a.Resolve(teacherID, outcome, notes, now) })
}

// Intervene records what a teacher did.
func (d *Dashboard) Intervene(ctx context.Context, alertID uint64, teacherID string, action alert.Action, notes string) (alert.Intervention, error) {
	in := alert.Intervention{ID: uuid.NewString(), AlertID: alertID, TeacherID: teacherID, Action: action, Notes: notes, RecordedAt: d.now()}
	_, err := d.act(ctx, alertID, teacherID, func(a *alert.Alert) error { return a.Intervene(in) })
	return in, err
}

// Overview is a classroom's students by status, and its hotspots.
type Overview struct {
	ClassroomID string
	Students    []alert.StudentStatus
	// Hotspots are the classroom-wide alerts that are unresolved or recent.
	Hotspots    []alert.Alert
	GeneratedAt time.Time
}

// Overview reads a classroom's current picture for a teacher assigned to it.
func (d *Dashboard) Overview(ctx context.Context, teacherID, classroomID string) (Overview, error) {
	if _, err := d.classrooms(ctx, teacherID, []string{classroomID}); err != nil {
		return Overview{}, err
	}
	now := d.now()
	alerts, err := d.repo.ClassroomAlerts(ctx, classroomID, now.Add(-overviewLookback), maxOverviewAlerts)
	if err != nil {
		return Overview{}, err
	}
	byStudent := map[string][]alert.Alert{}
	ov := Overview{ClassroomID: classroomID, GeneratedAt: now}
	for _, a := range alerts {
		if a.StudentID == "" {
			if a.State != alert.StateResolved || now.Sub(a.CreatedAt) < alert.ActiveWindow {
				ov.Hotspots = append(ov.Hotspots, a)
			}
			continue
		}
		byStudent[a.StudentID] = append(byStudent[a.StudentID], a)
	}
	// The students' raw activity first: it decides whether an idle alert
	// still holds (a student who came back is no longer idle).
	var active []ActiveStudent
	if d.students != nil {
		if active, err = d.students.ActiveStudents(ctx, classroomID); err != nil {
			return Overview{}, err
		}
	}
	lastActivity := make(map[string]time.Time, len(active))
	for _, a := range active {
		lastActivity[a.StudentID] = a.LastEventAt
	}
	statuses := map[string]*alert.StudentStatus{}
	for id, as := range byStudent {
		st := alert.Status(id, as, lastActivity[id], now)
		statuses[id] = &st
	}
	for _, a := range active {
		st, ok := statuses[a.StudentID]
		if !ok {
			statuses[a.StudentID] = &alert.StudentStatus{StudentID: a.StudentID, State: alert.StudentOK,
				LastEventAt: a.LastEventAt, CurrentItemID: a.CurrentItemID}
			continue
		}
		// The raw events are newer than any alert's trigger time.
		if a.LastEventAt.After(st.LastEventAt) {
			st.LastEventAt = a.LastEventAt
			st.CurrentItemID = a.CurrentItemID
		}
	}
	for _, st := range statuses {
		ov.Students = append(ov.Students, *st)
	}
	slices.SortFunc(ov.Students, func(a, b alert.StudentStatus) int {
		if c := cmp.Compare(b.State, a.State); c != 0 {
			return c
		}
		return cmp.Compare(a.StudentID, b.StudentID)
	})
	return ov, nil
}
