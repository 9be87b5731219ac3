package task

import (
	"context"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/window"
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

// ErrUnknownSession answers a claim by a session the coordinator does not know.
var ErrUnknownSession = domainerr.New(domainerr.FailedPrecondition, "session is not known to the coordinator")

// Sessions is the queue's view of the coordinator's sessions; the
// coordinator adapter implements it.
type Sessions interface {
	// Authenticate checks a session's token and returns the session.
	Authenticate(ctx context.Context, id, token string) (Session, error)
	// Lookup returns what the coordinator says of a session now; found is
	// false when it does not know the session at all.
	Lookup(ctx context.Context, id string) (s Session, found bool, err error)
}

// Ended reports whether the session failed or deregistered: it has lost
// its claims, even while the queue has yet to take them back.
func (s Session) Ended() bool {
	return s.Status == SessionFailed || s.Status == SessionDeregistered
}

// CanClaim explains why the session may not claim at now, or returns nil.
// A session may claim when it is registered or active (its lease runs from
// registration), healthy, and inside one of its time windows.
func (s Session) CanClaim(now time.Time) error {
	switch {
	case s.Ended():
		return ErrSessionFailed
	case s.Status == SessionSuspect:
		return ErrSessionSuspect
	case s.ConsecutiveFailures > 0:
		return ErrSessionUnhealthy
	case !window.InAny(s.Windows, now):
		return ErrOutsideWindow
	}
	return nil
}
