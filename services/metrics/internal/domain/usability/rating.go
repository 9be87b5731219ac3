package usability

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// MaxFeedbackBytes bounds a rating's free text.
const MaxFeedbackBytes = 2 << 10

// Rating is a student's 1–5 rating of an item.
type Rating struct {
	RatingID    string
	StudentID   string
	ClassroomID string
	AppID       string
	ItemID      string
	Rating      int
	Feedback    string
	OccurredAt  time.Time
}

// Validate returns the first invalid field as an INVALID_ARGUMENT error.
func (r *Rating) Validate(w Window) error {
	for _, id := range []struct {
		field, v string
		max      int
	}{
		{"rating_id", r.RatingID, MaxIDLen},
		{"student_id", r.StudentID, MaxIDLen},
		{"classroom_id", r.ClassroomID, MaxIDLen},
		{"app_id", r.AppID, MaxIDLen},
	} {
		if p := checkID(id.field, id.v, id.max, true); p != nil {
			return domainerr.Invalid(p.Field, p.Reason)
		}
	}
	if p := checkID("item_id", r.ItemID, MaxItemLen, false); p != nil {
		return domainerr.Invalid(p.Field, p.Reason)
	}
	if r.Rating < 1 || r.Rating > 5 {
		return domainerr.Invalid("rating", "must be between 1 and 5")
	}
	if len(r.Feedback) > MaxFeedbackBytes || !utf8.ValidString(r.Feedback) {
		return domainerr.Invalid("feedback", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxFeedbackBytes))
	}
	for _, c := range r.Feedback {
		if c == 0 {
			return domainerr.Invalid("feedback", "must not contain NUL")
		}
	}
	switch {
	case r.OccurredAt.After(w.Now.Add(MaxFuture)):
		return domainerr.Invalid("occurred_at", fmt.Sprintf("is more than %s ahead of the server's clock", MaxFuture))
	case w.Retention > 0 && !r.OccurredAt.After(w.Now.Add(-w.Retention)):
		return domainerr.Invalid("occurred_at", fmt.Sprintf("is older than the retention (%s)", w.Retention))
	}
	return nil
}

// RatingFilter selects ratings to summarise: a classroom or an app (or both),
// optionally one item, over [From, To).
type RatingFilter struct {
	ClassroomID string
	AppID       string
	ItemID      string
	From, To    time.Time
}

// RatingSummary counts ratings; Distribution[i] counts ratings of i+1.
type RatingSummary struct {
	Count        int64
	Mean         float64
	Distribution [5]int64
}
