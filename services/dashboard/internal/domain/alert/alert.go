package alert

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Indicator and Severity carry the values of gaia.metrics.v1.Indicator and
// gaia.metrics.v1.Severity, which the dashboard takes from the metrics
// service as they are.
type (
	Indicator int32
	Severity  int32
)

// The indicators the status precedence needs by name.
const (
	IndicatorRapidGuessing    Indicator = 3
	IndicatorIdle             Indicator = 7
	IndicatorClassroomHotspot Indicator = 9
)

// Severities, least urgent first.
const (
	SeverityInfo     Severity = 1
	SeverityWarning  Severity = 2
	SeverityHigh     Severity = 3
	SeverityCritical Severity = 4
)

// State is where an alert is in its life.
type State string

// The states of an alert. An alert only moves forward.
const (
	StateOpen         State = "open"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
)

// Outcome says how an alert ended; values match gaia.dashboard.v1.AlertOutcome.
type Outcome int32

// Outcomes; zero is "not resolved".
const (
	OutcomeHelped         Outcome = 1
	OutcomeFalsePositive  Outcome = 2
	OutcomeNoActionNeeded Outcome = 3
	OutcomeEscalated      Outcome = 4
)

// Action is what a teacher did; values match gaia.dashboard.v1.InterventionAction.
type Action int32

// The last action value; actions run from 1 to it.
const maxAction Action = 7

// Bounds of free text and ids, and of the interventions one alert keeps:
// every reply carries an alert with all of them, so their number bounds the
// alert's size (100 of 4 KiB notes: 400 KiB, within any reply's budget).
const (
	MaxIDLen              = 128
	MaxNotesLen           = 4 << 10
	MaxAlertInterventions = 100
)

// Domain errors.
var (
	ErrNotFound          = domainerr.New(domainerr.NotFound, "alert not found")
	ErrResolved          = domainerr.New(domainerr.FailedPrecondition, "alert is already resolved")
	ErrNoAssignment      = domainerr.New(domainerr.NotFound, "no such assignment")
	ErrDashboardClosed   = domainerr.New(domainerr.Unavailable, "the dashboard is shutting down")
	ErrInterventionsFull = domainerr.New(domainerr.FailedPrecondition, fmt.Sprintf("alert already has %d interventions, the most one alert keeps", MaxAlertInterventions))
)

// Event is one frustration event as the metrics service reported it.
type Event struct {
	ID          uint64
	ClassroomID string
	AppID       string
	StudentID   string
	ItemID      string
	Indicator   Indicator
	Severity    Severity
	Reasons     []string
	TriggeredAt time.Time
}

// Alert is a frustration finding shown to a classroom's teachers.
type Alert struct {
	ID                 uint64
	FrustrationEventID uint64
	ClassroomID        string
	AppID              string
	StudentID          string // empty for classroom-wide alerts (hotspots)
	ItemID             string
	Indicator          Indicator
	Severity           Severity
	Reasons            []string
	TriggeredAt        time.Time
	State              State
	CreatedAt          time.Time
	AcknowledgedAt     time.Time
	AcknowledgedBy     string
	ResolvedAt         time.Time
	ResolvedBy         string
	Outcome            Outcome
	ResolutionNotes    string
	Interventions      []Intervention
}

// Intervention is one thing a teacher did about an alert.
type Intervention struct {
	ID         string
	AlertID    uint64
	TeacherID  string
	Action     Action
	Notes      string
	RecordedAt time.Time
}

// Acknowledge moves an open alert to acknowledged. Acknowledging an
// acknowledged alert changes nothing (a second click, a second teacher); a
// resolved one is ErrResolved.
func (a *Alert) Acknowledge(teacherID string, now time.Time) error {
	switch a.State {
	case StateOpen:
		a.State, a.AcknowledgedAt, a.AcknowledgedBy = StateAcknowledged, now, teacherID
		return nil
	case StateAcknowledged:
		return nil
	default:
		return ErrResolved
	}
}

// Resolve closes an open or acknowledged alert with an outcome; a resolved
// one is ErrResolved. Resolving an alert nobody acknowledged also records
// the resolver as its acknowledger, so every resolved alert says who saw it.
func (a *Alert) Resolve(teacherID string, outcome Outcome, notes string, now time.Time) error {
	if a.State == StateResolved {
		return ErrResolved
	}
	if a.State == StateOpen {
		a.AcknowledgedAt, a.AcknowledgedBy = now, teacherID
	}
	a.State, a.ResolvedAt, a.ResolvedBy, a.Outcome, a.ResolutionNotes = StateResolved, now, teacherID, outcome, notes
	return nil
}

// Intervene records that a teacher acted. It is allowed in every state (a
// teacher may note what they did after resolving); an open alert becomes
// acknowledged, since whoever helped has seen it.
func (a *Alert) Intervene(in Intervention) error {
	if len(a.Interventions) >= MaxAlertInterventions {
		return ErrInterventionsFull
	}
	if a.State == StateOpen {
		a.State, a.AcknowledgedAt, a.AcknowledgedBy = StateAcknowledged, in.RecordedAt, in.TeacherID
	}
	a.Interventions = append(a.Interventions, in)
	return nil
}

// NotAssigned is the PERMISSION_DENIED answer to a teacher asking for a
// classroom not assigned to them.
func NotAssigned(teacherID, classroomID string) error {
	return domainerr.New(domainerr.PermissionDenied, fmt.Sprintf("classroom %q is not assigned to teacher %q", classroomID, teacherID))
}

// ValidateID checks a teacher, classroom or student id named field.
func ValidateID(field, id string) error {
	switch {
	case id == "":
		return domainerr.Invalid(field, "must not be empty")
	case len(id) > MaxIDLen:
		return domainerr.Invalid(field, fmt.Sprintf("must be at most %d bytes", MaxIDLen))
	case !utf8.ValidString(id):
		return domainerr.Invalid(field, "must be valid UTF-8")
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return domainerr.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// ValidateNotes checks free text named field.
func ValidateNotes(field, notes string) error {
	switch {
	case len(notes) > MaxNotesLen:
		return domainerr.Invalid(field, fmt.Sprintf("must be at most %d bytes", MaxNotesLen))
	case !utf8.ValidString(notes):
		return domainerr.Invalid(field, "must be valid UTF-8")
	case strings.ContainsRune(notes, 0):
		return domainerr.Invalid(field, "must not contain NUL characters")
	}
	return nil
}

// ValidateOutcome checks a resolution outcome.
func ValidateOutcome(o Outcome) error {
	if o < OutcomeHelped || o > OutcomeEscalated {
		return domainerr.Invalid("outcome", "must be one of HELPED, FALSE_POSITIVE, NO_ACTION_NEEDED, ESCALATED")
	}
	return nil
}

// ValidateAction checks an intervention action.
func ValidateAction(a Action) error {
	if a < 1 || a > maxAction {
		return domainerr.Invalid("action", "must be set to a known intervention action")
	}
	return nil
}
