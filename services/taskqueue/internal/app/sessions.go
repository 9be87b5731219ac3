package app

import (
	"context"
	"time"

	"github.com/gaia-platform/gaia/internal/window"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Session is a coordinator session as the queue sees it.
type Session struct {
	ID                  string
	Name                string
	Status              SessionStatus
	ConsecutiveFailures int
	MaxConcurrentTasks  int
	Windows             []window.Window
}

// SessionStatus mirrors the coordinator's committed session status.
type SessionStatus string

// Session statuses.
const (
	SessionRegistered   SessionStatus = "registered"
	SessionActive       SessionStatus = "active"
	SessionSuspect      SessionStatus = "suspect"
	SessionFailed       SessionStatus = "failed"
	SessionDeregistered SessionStatus = "deregistered"
)

// Sessions is the queue's view of the coordinator's sessions.
type Sessions interface {
	// Authenticate checks a session's token and returns the session.
	Authenticate(ctx context.Context, id, token string) (Session, error)
	// Lookup returns what the coordinator says of a session now; found is
	// false when it does not know the session at all.
	Lookup(ctx context.Context, id string) (s Session, found bool, err error)
}

// availability explains why a session may not claim now, or returns nil.
// A session may claim when it is registered or active (its lease runs from
// registration), healthy, and inside one of its time windows.
func availability(s Session, now time.Time) error {
	switch s.Status {
	case SessionFailed, SessionDeregistered:
		return task.ErrSessionFailed
	case SessionSuspect:
		return task.ErrSessionSuspect
	}
	if s.ConsecutiveFailures > 0 {
		return task.ErrSessionUnhealthy
	}
	if !window.InAny(s.Windows, now) {
		return task.ErrOutsideWindow
	}
	return nil
}
