package app

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// Ratings is the SubmitRating and GetRatingSummary use cases.
type Ratings struct {
	store     usability.RatingStore
	enabled   bool
	retention time.Duration
	metrics   *Metrics
	now       func() time.Time
}

// NewRatings returns the use cases.
func NewRatings(store usability.RatingStore, enabled bool, retention time.Duration, metrics *Metrics) *Ratings {
	return &Ratings{store: store, enabled: enabled, retention: retention, metrics: metrics, now: time.Now}
}

// Submit stores a rating, idempotent by rating id (a server-chosen one when
// empty); a repeated id returns the stored rating and duplicate=true.
func (s *Ratings) Submit(ctx context.Context, r usability.Rating) (usability.Rating, bool, error) {
	if !s.enabled {
		return r, false, usability.ErrIngestDisabled
	}
	now := s.now()
	if r.RatingID == "" {
		r.RatingID = uuid.NewString()
	}
	if r.OccurredAt.IsZero() {
		r.OccurredAt = now
	}
	r.OccurredAt = r.OccurredAt.Truncate(time.Microsecond)
	if err := r.Validate(usability.Window{Now: now, Retention: s.retention}); err != nil {
		return r, false, err
	}
	// As for events: an app credential rates for its own app and classrooms
	// only, else PERMISSION_DENIED.
	if err := auth.RequireApp(ctx, r.AppID, r.ClassroomID); err != nil {
		return r, false, err
	}
	stored, dup, err := s.store.Insert(ctx, r)
	if err != nil {
		return r, false, err
	}
	if dup {
		s.metrics.ratings.WithLabelValues("duplicate").Inc()
	} else {
		s.metrics.ratings.WithLabelValues("accepted").Inc()
	}
	return stored, dup, nil
}

// DefaultSummaryWindow is the window of a summary without a start.
const DefaultSummaryWindow = 7 * 24 * time.Hour

// Summary summarises the ratings of a classroom or an app over [from, to);
// zero times default to the last 7 days before now.
func (s *Ratings) Summary(ctx context.Context, f usability.RatingFilter) (usability.RatingSummary, usability.RatingFilter, error) {
	// An app sees its own ratings: no app_id means its own, and a credential
	// limited to some classrooms must name one of them.
	if p, ok := auth.FromContext(ctx); ok && p.Role == auth.RoleApp {
		if f.AppID == "" {
			f.AppID = p.AppID
		}
		if len(p.Classrooms) > 0 && f.ClassroomID == "" {
			return usability.RatingSummary{}, f, domainerr.New(domainerr.PermissionDenied, "this app credential is limited to some classrooms: name one in classroom_id")
		}
		if err := auth.RequireApp(ctx, f.AppID, f.ClassroomID); err != nil {
			return usability.RatingSummary{}, f, err
		}
	}
	// A teacher sees the classrooms assigned to it (the interceptor checked
	// a named one against the dashboard): an app's ratings across every
	// classroom are not its to read.
	if p, ok := auth.FromContext(ctx); ok && p.Role == auth.RoleTeacher && f.ClassroomID == "" {
		return usability.RatingSummary{}, f, domainerr.Invalid("classroom_id", "a teacher must name one of its assigned classrooms")
	}
	if f.ClassroomID == "" && f.AppID == "" {
		return usability.RatingSummary{}, f, domainerr.Invalid("classroom_id", "a classroom_id or an app_id is required")
	}
	if f.To.IsZero() {
		f.To = s.now()
	}
	if f.From.IsZero() {
		f.From = f.To.Add(-DefaultSummaryWindow)
	}
	if !f.From.Before(f.To) {
		return usability.RatingSummary{}, f, domainerr.Invalid("start_time", "must be before end_time")
	}
	sum, err := s.store.Summary(ctx, f)
	return sum, f, err
}
