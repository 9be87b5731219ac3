// Package usability is the metrics service's domain: usability events, ratings
// and per-minute classroom snapshots, their invariants, sentinel errors and the
// repository interfaces the adapters implement. It knows nothing of protobuf,
// SQL or the group committer.
package usability

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Kind is what a student did.
type Kind string

// The kinds of event (DESIGN.md, gaia.metrics.v1).
const (
	KindAttempt    Kind = "attempt"
	KindError      Kind = "error"
	KindKeystroke  Kind = "keystroke"
	KindClick      Kind = "click"
	KindHint       Kind = "hint"
	KindHesitation Kind = "hesitation"
	KindFocusLost  Kind = "focus_lost"
	KindPageView   Kind = "page_view"
)

// Kinds lists every kind, in the API's order.
var Kinds = []Kind{KindAttempt, KindError, KindKeystroke, KindClick, KindHint, KindHesitation, KindFocusLost, KindPageView}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Bounds on an event.
const (
	MaxIDLen        = 128
	MaxItemLen      = 256
	MaxAttrs        = 32
	MaxAttrKeyLen   = 64
	MaxAttrValueLen = 512
	// MaxFuture is how far ahead of the server's clock occurred_at may be.
	MaxFuture = 5 * time.Minute
)

// ErrIngestDisabled answers writes while USABILITY_METRICS_ENABLED=false.
var ErrIngestDisabled = domainerr.New(domainerr.FailedPrecondition, "usability metrics are disabled on this server (USABILITY_METRICS_ENABLED=false); nothing was stored")

// Event is one student interaction.
type Event struct {
	EventID     string
	AppID       string
	ClassroomID string
	StudentID   string
	ItemID      string
	SkillID     string
	Kind        Kind
	// Correct is set only on attempts.
	Correct *bool
	Value   float64
	// X and Y are set only on clicks.
	X, Y *int32
	// OccurredAt is truncated to the microsecond, as PostgreSQL stores it.
	OccurredAt time.Time
	Attrs      map[string]string
}

// Key identifies an event for deduplication: a retry is the same event again.
type Key struct {
	ClassroomID, AppID, EventID string
	OccurredAt                  int64 // Unix microseconds
}

// Key returns the event's identity.
func (e *Event) Key() Key {
	return Key{ClassroomID: e.ClassroomID, AppID: e.AppID, EventID: e.EventID, OccurredAt: e.OccurredAt.UnixMicro()}
}

// Less orders keys; writers take index locks in this order, so two writers
// never wait on each other in a cycle.
func (k Key) Less(o Key) bool {
	if k.ClassroomID != o.ClassroomID {
		return k.ClassroomID < o.ClassroomID
	}
	if k.AppID != o.AppID {
		return k.AppID < o.AppID
	}
	if k.EventID != o.EventID {
		return k.EventID < o.EventID
	}
	return k.OccurredAt < o.OccurredAt
}

// IsError says whether the event counts as an error (DESIGN.md, Definitions):
// a wrong attempt or an event of kind error.
func (e *Event) IsError() bool {
	return e.Kind == KindError || (e.Kind == KindAttempt && e.Correct != nil && !*e.Correct)
}

// Problem is why one event of a batch was rejected: the field (relative to
// the event, such as "student_id" or "attrs") and the reason.
type Problem struct {
	Field  string
	Reason string
}

// Window bounds occurred_at: not older than Retention, not more than
// MaxFuture ahead of Now.
type Window struct {
	Now       time.Time
	Retention time.Duration
}

// Validate checks the event's invariants and returns the first problem, or
// nil when the event may be stored.
func (e *Event) Validate(w Window) *Problem {
	for _, id := range []struct {
		field, v string
		max      int
		required bool
	}{
		{"event_id", e.EventID, MaxIDLen, true},
		{"app_id", e.AppID, MaxIDLen, true},
		{"classroom_id", e.ClassroomID, MaxIDLen, true},
		{"student_id", e.StudentID, MaxIDLen, true},
		{"item_id", e.ItemID, MaxItemLen, false},
		{"skill_id", e.SkillID, MaxItemLen, false},
	} {
		if p := checkID(id.field, id.v, id.max, id.required); p != nil {
			return p
		}
	}
	if !e.Kind.Valid() {
		names := make([]string, len(Kinds))
		for i, k := range Kinds {
			names[i] = string(k)
		}
		return &Problem{"kind", "must be set to one of " + strings.Join(names, ", ")}
	}
	if e.Correct != nil && e.Kind != KindAttempt {
		return &Problem{"correct", "is only allowed on attempts"}
	}
	if e.Kind == KindAttempt && e.Correct == nil {
		return &Problem{"correct", "must be set on attempts"}
	}
	if (e.X != nil || e.Y != nil) && e.Kind != KindClick {
		field := "x"
		if e.X == nil {
			field = "y"
		}
		return &Problem{field, "is only allowed on clicks"}
	}
	if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
		return &Problem{"value", "must be a finite number"}
	}
	if e.Kind == KindHesitation && e.Value < 0 {
		return &Problem{"value", "must not be negative on hesitations (seconds)"}
	}
	switch {
	case e.OccurredAt.IsZero():
		return &Problem{"occurred_at", "must be set"}
	case e.OccurredAt.After(w.Now.Add(MaxFuture)):
		return &Problem{"occurred_at", fmt.Sprintf("is more than %s ahead of the server's clock (%s)", MaxFuture, w.Now.UTC().Format(time.RFC3339))}
	case w.Retention > 0 && !e.OccurredAt.After(w.Now.Add(-w.Retention)):
		return &Problem{"occurred_at", fmt.Sprintf("is older than the retention of raw events (%s)", w.Retention)}
	}
	if len(e.Attrs) > MaxAttrs {
		return &Problem{"attrs", fmt.Sprintf("must have at most %d entries", MaxAttrs)}
	}
	for k, v := range e.Attrs {
		if p := checkID("attrs", k, MaxAttrKeyLen, true); p != nil {
			return &Problem{"attrs", fmt.Sprintf("key %.64q: %s", k, p.Reason)}
		}
		if utf8.RuneCountInString(v) > MaxAttrValueLen || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return &Problem{"attrs[" + k + "]", fmt.Sprintf("must be valid UTF-8 of at most %d characters without NUL", MaxAttrValueLen)}
		}
	}
	return nil
}

// checkID accepts 1–max (0–max when optional) printable characters.
func checkID(field, v string, max int, required bool) *Problem {
	if v == "" {
		if required {
			return &Problem{field, "must not be empty"}
		}
		return nil
	}
	// Bound the bytes before counting runes, so a huge id costs nothing.
	if len(v) > 4*max || utf8.RuneCountInString(v) > max {
		return &Problem{field, fmt.Sprintf("must be at most %d characters", max)}
	}
	if !utf8.ValidString(v) {
		return &Problem{field, "must be valid UTF-8"}
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return &Problem{field, "must hold only printable characters"}
		}
	}
	return nil
}
