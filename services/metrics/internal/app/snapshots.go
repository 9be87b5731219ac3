package app

import (
	"context"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// Snapshots is the GetClassroomSnapshot and ListClassroomSnapshots use cases.
type Snapshots struct {
	store usability.SnapshotStore
	now   func() time.Time
}

// NewSnapshots returns the use cases.
func NewSnapshots(store usability.SnapshotStore) *Snapshots {
	return &Snapshots{store: store, now: time.Now}
}

// Get returns the classroom's snapshot of the minute holding at; a zero at
// means the latest complete minute with events.
func (s *Snapshots) Get(ctx context.Context, classroomID string, at time.Time) (usability.Snapshot, error) {
	if at.IsZero() {
		m, err := s.store.Latest(ctx, classroomID, usability.Minute(s.now()))
		if err != nil {
			return usability.Snapshot{}, err
		}
		if m.IsZero() {
			return usability.Snapshot{}, usability.ErrSnapshotNotFound
		}
		at = m
	}
	return s.store.Get(ctx, classroomID, usability.Minute(at))
}

// DefaultSnapshotWindow is the window of a list without a start.
const DefaultSnapshotWindow = time.Hour

// MaxSnapshotWindow bounds a list's window (one page of 1,440 minutes is a
// day; a window may span several pages).
const MaxSnapshotWindow = 31 * 24 * time.Hour

// List returns up to limit snapshots of minutes in [from, to) after the
// minute after, oldest first; zero times default to the last hour.
func (s *Snapshots) List(ctx context.Context, classroomID string, from, to, after time.Time, limit int) ([]usability.Snapshot, time.Time, time.Time, error) {
	if to.IsZero() {
		to = s.now()
	}
	if from.IsZero() {
		from = to.Add(-DefaultSnapshotWindow)
	}
	if !from.Before(to) {
		return nil, from, to, domainerr.Invalid("start_time", "must be before end_time")
	}
	if to.Sub(from) > MaxSnapshotWindow {
		return nil, from, to, domainerr.Invalid("start_time", "the window may span at most 31 days")
	}
	snaps, err := s.store.List(ctx, classroomID, usability.Minute(from), to, after, limit)
	return snaps, from, to, err
}

// DefaultActiveWithin is how far back ListClassroomStudents looks by default;
// MaxActiveWithin bounds it.
const (
	DefaultActiveWithin = 30 * time.Minute
	MaxActiveWithin     = 24 * time.Hour
)

// Students returns up to limit of the classroom's students with an event
// within activeWithin of now, by student id after the id after.
func (s *Snapshots) Students(ctx context.Context, classroomID string, activeWithin time.Duration, after string, limit int) ([]usability.ActiveStudent, error) {
	return s.store.Students(ctx, classroomID, s.now().Add(-activeWithin), after, limit)
}
