package alert

import (
	"context"
	"time"
)

// Assignment links a teacher to a classroom.
type Assignment struct {
	TeacherID   string
	ClassroomID string
	DisplayName string
	AssignedAt  time.Time
}

// Filter selects alerts. Classrooms must not be empty: callers resolve "all
// of the teacher's classrooms" first.
type Filter struct {
	Classrooms  []string
	States      []State
	MinSeverity Severity
	StudentID   string
	// Only alerts with ids in (AfterID, UpToID]; zero UpToID is no bound.
	AfterID uint64
	UpToID  uint64
	// Only alerts with ids below BeforeID (paging newest first); zero is no bound.
	BeforeID uint64
	Limit    int
}

// Repository stores alerts, interventions, assignments and the follower's
// checkpoint.
type Repository interface {
	// RecordEvents turns frustration events into alerts, in one transaction
	// with the checkpoint: events at or below the stored checkpoint are
	// skipped (a replay), the rest become alerts in id order, and the
	// checkpoint moves to the last event. It returns the alerts created.
	RecordEvents(ctx context.Context, events []Event) ([]Alert, error)
	// Checkpoint is the last frustration event id turned into alerts.
	Checkpoint(ctx context.Context) (uint64, error)
	// LastAlertID is the highest alert id stored, 0 when none.
	LastAlertID(ctx context.Context) (uint64, error)
	// AlertsAfter lists alerts with ids above afterID in id order, every
	// classroom, at most limit.
	AlertsAfter(ctx context.Context, afterID uint64, limit int) ([]Alert, error)

	GetAlert(ctx context.Context, id uint64) (Alert, error)
	// UpdateAlert runs fn on the alert under a row lock and stores what it
	// changed (state fields and any intervention fn appended).
	UpdateAlert(ctx context.Context, id uint64, fn func(*Alert) error) (Alert, error)
	// ListAlerts lists alerts matching f, newest first when f.BeforeID paging
	// is used and oldest first when f.AfterID is (Ascending).
	ListAlerts(ctx context.Context, f Filter, ascending bool) ([]Alert, error)
	// StudentAlerts lists a classroom's student alerts that are unresolved or
	// were raised since since, for the overview; HotspotAlerts the same for
	// classroom-wide ones.
	ClassroomAlerts(ctx context.Context, classroomID string, since time.Time, limit int) ([]Alert, error)

	Assign(ctx context.Context, a Assignment) (Assignment, error)
	Unassign(ctx context.Context, teacherID, classroomID string) error
	TeacherClassrooms(ctx context.Context, teacherID string) ([]Assignment, error)
	TeacherHasClassroom(ctx context.Context, teacherID, classroomID string) (bool, error)
}
