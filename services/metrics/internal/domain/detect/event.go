package detect

import (
	"strconv"
	"time"
)

// Kind is what a student did. The values match gaia.metrics.v1.EventKind, and
// KindRating stands for a rating (which arrives through SubmitRating, not as a
// usability event).
type Kind uint8

// Event kinds.
const (
	KindAttempt Kind = iota + 1
	KindError
	KindKeystroke
	KindClick
	KindHint
	KindHesitation
	KindFocusLost
	KindPageView
	KindRating Kind = 100
)

// Event is one thing a student did, as the detector needs it.
type Event struct {
	ClassroomID string
	StudentID   string
	AppID       string
	ItemID      string
	Kind        Kind
	// Correct and HasCorrect: an attempt's answer. An attempt without one is
	// neither correct nor an error.
	Correct    bool
	HasCorrect bool
	// X, Y and HasXY: a click's position in CSS pixels.
	X, Y  int32
	HasXY bool
	// Action is attrs.action of a page view ("start", "finish").
	Action string
	// Key is attrs.key of a keystroke ("backspace", "delete" are deletions).
	Key string
	// Rating is the 1–5 rating of a KindRating event.
	Rating int32
	// OccurredAt is event time.
	OccurredAt time.Time
}

// isError: DESIGN.md "An error is an attempt with correct = false, or an
// event of kind error."
func (e *Event) isError() bool {
	return e.Kind == KindError || (e.Kind == KindAttempt && e.HasCorrect && !e.Correct)
}

// isDeletion: DESIGN.md "A deletion is a keystroke with attrs.key = backspace
// or delete."
func (e *Event) isDeletion() bool {
	return e.Kind == KindKeystroke && (e.Key == "backspace" || e.Key == "delete")
}

// Detection is one finding: an indicator whose condition turned true for a
// student (or, for classroom_hotspot, a classroom), once per alert key and
// cooldown.
type Detection struct {
	ClassroomID string
	// StudentID is empty for classroom_hotspot.
	StudentID string
	AppID     string
	ItemID    string
	Indicator Indicator
	Severity  Severity
	// Reasons say why in plain words.
	Reasons []string
	// Evidence are the numbers behind the finding.
	Evidence map[string]float64
	// TriggeredAt is the event time at which the condition turned true: the
	// occurred_at of the event that made it true, or for idle the last event
	// plus the idle timeout.
	TriggeredAt time.Time
}

// AlertKey is DESIGN.md's alert key: classroom, student, indicator, plus the
// item for struggle, wheel_spinning and classroom_hotspot.
func (d *Detection) AlertKey() string {
	k := d.ClassroomID + "\x1f" + d.StudentID + "\x1f" + d.Indicator.String()
	if d.Indicator.keyedByItem() {
		k += "\x1f" + d.ItemID
	}
	return k
}

// IdempotencyKey is the alert key plus the trigger time: a replay or a
// takeover that finds the same transition again produces the same key, so the
// store keeps one frustration event.
func (d *Detection) IdempotencyKey() string {
	return d.AlertKey() + "\x1f" + strconv.FormatInt(d.TriggeredAt.UnixNano(), 10)
}
