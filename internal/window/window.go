// Package window is the recurring weekly time window that sessions and
// session affinities use (gaia.type.v1.TimeWindow): validation, whether a
// moment falls inside, and conversion from the protobuf message. It owns no
// state.
package window

import (
	"fmt"
	"time"

	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

// Weekday numbers days as ISO 8601 does: Monday is 1, Sunday 7.
type Weekday int

// Window is a recurring weekly period in a time zone. A window whose end is
// before its start wraps past midnight and belongs to the day it opens.
type Window struct {
	Days        []Weekday `json:"days,omitempty"`
	StartMinute int       `json:"start_minute"`
	EndMinute   int       `json:"end_minute"`
	TimeZone    string    `json:"time_zone,omitempty"`
}

// FromProto converts and validates a protobuf window.
func FromProto(pw *typev1.TimeWindow) (Window, error) {
	w := Window{StartMinute: int(pw.GetStartMinute()), EndMinute: int(pw.GetEndMinute()), TimeZone: pw.GetTimeZone()}
	for _, d := range pw.GetDays() {
		w.Days = append(w.Days, Weekday(d))
	}
	return w, w.Validate()
}

// ToProto converts a window to its protobuf message.
func (w Window) ToProto() *typev1.TimeWindow {
	pw := &typev1.TimeWindow{StartMinute: int32(w.StartMinute), EndMinute: int32(w.EndMinute), TimeZone: w.TimeZone}
	for _, d := range w.Days {
		pw.Days = append(pw.Days, typev1.Weekday(d))
	}
	return pw
}

// Validate checks a window's numbers and time zone.
func (w Window) Validate() error {
	if w.StartMinute < 0 || w.StartMinute > 1439 {
		return fmt.Errorf("start_minute %d is outside 0–1439", w.StartMinute)
	}
	if w.EndMinute < 1 || w.EndMinute > 1440 {
		return fmt.Errorf("end_minute %d is outside 1–1440", w.EndMinute)
	}
	if w.StartMinute == w.EndMinute {
		return fmt.Errorf("start_minute and end_minute are both %d: the window is empty", w.StartMinute)
	}
	for _, d := range w.Days {
		if d < 1 || d > 7 {
			return fmt.Errorf("day %d is not a weekday", d)
		}
	}
	// "Local" is the zone of whichever machine reads the window, so replicas
	// in different zones would disagree about it.
	if w.TimeZone == "Local" {
		return fmt.Errorf(`time zone "Local" is not an IANA name such as Europe/Paris`)
	}
	if _, err := time.LoadLocation(w.TimeZone); err != nil {
		return fmt.Errorf("time zone %q is unknown", w.TimeZone)
	}
	return nil
}

// Contains reports whether t falls inside the window. A window whose end is
// before its start wraps past midnight and belongs to the day it opens.
func (w Window) Contains(t time.Time) bool {
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		return false
	}
	local := t.In(loc)
	minute := local.Hour()*60 + local.Minute()
	day := isoWeekday(local.Weekday())
	if w.StartMinute < w.EndMinute {
		return minute >= w.StartMinute && minute < w.EndMinute && w.onDay(day)
	}
	if minute >= w.StartMinute {
		return w.onDay(day)
	}
	if minute < w.EndMinute {
		return w.onDay(previousDay(day))
	}
	return false
}

func (w Window) onDay(d Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

func isoWeekday(d time.Weekday) Weekday {
	if d == time.Sunday {
		return 7
	}
	return Weekday(d)
}

func previousDay(d Weekday) Weekday {
	if d == 1 {
		return 7
	}
	return d - 1
}

// InAny reports whether t is inside any of the windows; no windows means always.
func InAny(windows []Window, t time.Time) bool {
	if len(windows) == 0 {
		return true
	}
	for _, w := range windows {
		if w.Contains(t) {
			return true
		}
	}
	return false
}
