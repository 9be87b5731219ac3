package usability

import (
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// ErrSnapshotNotFound answers a minute in which the classroom had no events.
var ErrSnapshotNotFound = domainerr.New(domainerr.NotFound, "no snapshot: the classroom had no events in that minute")

// MaxHardestItems is how many items a snapshot lists.
const MaxHardestItems = 5

// Snapshot is a classroom's rollup of one minute (by occurred_at).
type Snapshot struct {
	ClassroomID    string
	Minute         time.Time
	ActiveStudents int64
	Events         int64
	// Attempts, WrongAttempts and ErrorEvents give the error rate:
	// (WrongAttempts + ErrorEvents) / (Attempts + ErrorEvents).
	Attempts, WrongAttempts, ErrorEvents int64
	MeanHesitation                       time.Duration
	// FrustratedStudents counts the students with a frustration event
	// (by its trigger time) in the minute.
	FrustratedStudents int64
	HardestItems       []ItemDifficulty
}

// ErrorRate is errors over attempts and error events, 0–1.
func (s Snapshot) ErrorRate() float64 {
	return ratio(s.WrongAttempts+s.ErrorEvents, s.Attempts+s.ErrorEvents)
}

// ItemDifficulty is one item's attempts and errors in a minute.
type ItemDifficulty struct {
	ItemID string
	// Attempts are answers; Errors are wrong answers and error events.
	Attempts, Errors, ErrorEvents int64
	// StrugglingStudents are the students on whom struggle, wheel spinning
	// or rapid guessing fired for this item in the minute.
	StrugglingStudents int64
}

// ErrorRate is Errors over attempts and error events, 0–1.
func (d ItemDifficulty) ErrorRate() float64 {
	return ratio(d.Errors, d.Attempts+d.ErrorEvents)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Minute is the start of t's minute, in UTC.
func Minute(t time.Time) time.Time { return t.UTC().Truncate(time.Minute) }
