package alert

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// StudentState is a student's one status.
type StudentState int

// States in rising precedence; values match gaia.dashboard.v1.StudentState.
const (
	StudentOK       StudentState = 1
	StudentStruggle StudentState = 2
	StudentMisuse   StudentState = 3
	StudentIdle     StudentState = 4
	StudentCritical StudentState = 5
)

// ActiveWindow is how long an alert keeps its indicator "on" for a student's
// status unless it is resolved first. The detector reports indicators turning
// on, never off; ten minutes is its default cooldown, the time after which
// the same finding would be reported again if it still held.
const ActiveWindow = 10 * time.Minute

// StudentStatus is a student's current status with the reasons behind it.
type StudentStatus struct {
	StudentID        string
	State            StudentState
	Reasons          []string
	ActiveIndicators []Indicator
	CurrentItemID    string
	LastEventAt      time.Time
	OpenAlertIDs     []uint64
}

// Status derives one student's status from their alerts (any order) and the
// time of their last raw event, lastActivity (zero when unknown): the
// unresolved alerts raised within ActiveWindow of now are "live", except an
// idle alert once the student has done something after it triggered.
//
// The detector reports indicators turning on, never off, so without
// lastActivity a student who came back and worked without a new finding
// would show idle for the whole ActiveWindow.
//
//   - critical: a live alert of severity critical;
//   - idle: a live idle alert with no later live alert of another indicator
//     and no raw event after its trigger time (either means the student is
//     active again); while idle, the other indicators are suppressed;
//   - misuse: a live rapid_guessing alert;
//   - struggle: any other live alert;
//   - ok: nothing live.
//
// The reasons are those of the alerts that decided the state, newest first.
func Status(studentID string, alerts []Alert, lastActivity, now time.Time) StudentStatus {
	st := StudentStatus{StudentID: studentID, State: StudentOK}
	sorted := slices.Clone(alerts)
	slices.SortFunc(sorted, func(a, b Alert) int { return cmp.Compare(b.ID, a.ID) }) // newest first
	var live []Alert
	for _, a := range sorted {
		if a.TriggeredAt.After(st.LastEventAt) {
			st.LastEventAt = a.TriggeredAt
		}
		if st.CurrentItemID == "" && a.ItemID != "" {
			st.CurrentItemID = a.ItemID
		}
		if a.State == StateResolved {
			continue
		}
		st.OpenAlertIDs = append(st.OpenAlertIDs, a.ID)
		if now.Sub(a.CreatedAt) < ActiveWindow && !idleEnded(a, lastActivity) {
			live = append(live, a)
		}
	}
	slices.Sort(st.OpenAlertIDs)
	for _, a := range live {
		if !slices.Contains(st.ActiveIndicators, a.Indicator) {
			st.ActiveIndicators = append(st.ActiveIndicators, a.Indicator)
		}
	}
	slices.Sort(st.ActiveIndicators)

	pick := func(state StudentState, keep func(Alert) bool) bool {
		var reasons []string
		for _, a := range live {
			if keep(a) {
				reasons = append(reasons, strings.Join(a.Reasons, "; "))
			}
		}
		if len(reasons) == 0 {
			return false
		}
		st.State, st.Reasons = state, reasons
		return true
	}
	idle := len(live) > 0 && live[0].Indicator == IndicatorIdle
	switch {
	case pick(StudentCritical, func(a Alert) bool { return a.Severity >= SeverityCritical }):
	case idle && pick(StudentIdle, func(a Alert) bool { return a.ID == live[0].ID }):
		// Only the newest alert counts: the idle episode hides the rest.
		st.ActiveIndicators = []Indicator{IndicatorIdle}
	case pick(StudentMisuse, func(a Alert) bool { return a.Indicator == IndicatorRapidGuessing }):
	case pick(StudentStruggle, func(a Alert) bool { return a.Indicator != IndicatorIdle }):
	}
	return st
}

// idleEnded reports whether a is an idle alert the student has since ended
// by doing something. An idle alert triggers at the last event plus the idle
// timeout (event time), so any event after that is the student's return.
func idleEnded(a Alert, lastActivity time.Time) bool {
	return a.Indicator == IndicatorIdle && lastActivity.After(a.TriggeredAt)
}
