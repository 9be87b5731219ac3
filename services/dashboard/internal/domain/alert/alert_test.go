package alert

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestStateMachine(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ack := func(a *Alert) error { return a.Acknowledge("t2", now) }
	resolve := func(a *Alert) error { return a.Resolve("t2", OutcomeHelped, "ok", now) }
	intervene := func(a *Alert) error { return a.Intervene(Intervention{TeacherID: "t2", Action: 1, RecordedAt: now}) }
	cases := []struct {
		from State
		op   string
		do   func(*Alert) error
		want error
		to   State
	}{
		{StateOpen, "acknowledge", ack, nil, StateAcknowledged},
		{StateAcknowledged, "acknowledge", ack, nil, StateAcknowledged},
		{StateResolved, "acknowledge", ack, ErrResolved, StateResolved},
		{StateOpen, "resolve", resolve, nil, StateResolved},
		{StateAcknowledged, "resolve", resolve, nil, StateResolved},
		{StateResolved, "resolve", resolve, ErrResolved, StateResolved},
		{StateOpen, "intervene", intervene, nil, StateAcknowledged},
		{StateAcknowledged, "intervene", intervene, nil, StateAcknowledged},
		{StateResolved, "intervene", intervene, nil, StateResolved},
	}
	for _, c := range cases {
		t.Run(string(c.from)+"/"+c.op, func(t *testing.T) {
			a := Alert{State: c.from}
			if c.from != StateOpen {
				a.AcknowledgedBy = "t1"
			}
			if err := c.do(&a); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if a.State != c.to {
				t.Fatalf("state = %s, want %s", a.State, c.to)
			}
			if c.from != StateOpen && a.AcknowledgedBy != "t1" {
				t.Fatalf("acknowledger changed to %q; the first one stays", a.AcknowledgedBy)
			}
			if c.to != StateOpen && a.AcknowledgedBy == "" {
				t.Fatal("an alert past open must say who saw it")
			}
		})
	}
}

func TestStatusPrecedence(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	id := uint64(0)
	al := func(ind Indicator, sev Severity, age time.Duration, state State) Alert {
		id++
		return Alert{ID: id, Indicator: ind, Severity: sev, CreatedAt: now.Add(-age), TriggeredAt: now.Add(-age), State: state,
			Reasons: []string{"r" + string(rune('0'+id))}, ItemID: "i"}
	}
	const rage, struggle, wheel = Indicator(1), Indicator(2), Indicator(4)
	cases := []struct {
		name    string
		alerts  []Alert
		want    StudentState
		reasons int
	}{
		{"nothing", nil, StudentOK, 0},
		{"struggle", []Alert{al(struggle, SeverityWarning, time.Minute, StateOpen)}, StudentStruggle, 1},
		{"misuse beats struggle", []Alert{al(struggle, SeverityWarning, 2*time.Minute, StateOpen), al(IndicatorRapidGuessing, SeverityWarning, time.Minute, StateOpen)}, StudentMisuse, 1},
		{"idle beats misuse and hides it", []Alert{al(IndicatorRapidGuessing, SeverityWarning, 3*time.Minute, StateOpen), al(IndicatorIdle, SeverityWarning, time.Minute, StateOpen)}, StudentIdle, 1},
		{"activity after idle ends it", []Alert{al(IndicatorIdle, SeverityWarning, 3*time.Minute, StateOpen), al(rage, SeverityWarning, time.Minute, StateOpen)}, StudentStruggle, 1},
		{"critical beats idle", []Alert{al(wheel, SeverityCritical, 3*time.Minute, StateAcknowledged), al(IndicatorIdle, SeverityWarning, time.Minute, StateOpen)}, StudentCritical, 1},
		{"resolved alerts do not count", []Alert{al(wheel, SeverityCritical, time.Minute, StateResolved)}, StudentOK, 0},
		{"old alerts do not count", []Alert{al(struggle, SeverityWarning, ActiveWindow+time.Second, StateOpen)}, StudentOK, 0},
		{"every struggle reason", []Alert{al(struggle, SeverityWarning, 2*time.Minute, StateOpen), al(rage, SeverityWarning, time.Minute, StateOpen)}, StudentStruggle, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := Status("s", c.alerts, time.Time{}, now)
			if st.State != c.want || len(st.Reasons) != c.reasons {
				t.Fatalf("status = %v with reasons %v, want %v with %d reasons", st.State, st.Reasons, c.want, c.reasons)
			}
			var open []uint64
			for _, a := range c.alerts {
				if a.State != StateResolved {
					open = append(open, a.ID)
				}
			}
			if !slices.Equal(st.OpenAlertIDs, open) {
				t.Fatalf("open alerts %v, want %v", st.OpenAlertIDs, open)
			}
		})
	}
}

// A student who went idle and came back shows idle only until their next
// event, not for the whole ActiveWindow: the detector never reports idle
// turning off, so the student's last raw event decides (regression: the
// overview showed idle for ten minutes although it read a newer event).
func TestIdleEndsWithTheStudentsNextEvent(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	idleAt := now.Add(-3 * time.Minute) // last event at now-5m, + 2 min of silence
	idle := Alert{ID: 2, Indicator: IndicatorIdle, Severity: SeverityWarning, CreatedAt: idleAt, TriggeredAt: idleAt, State: StateOpen, Reasons: []string{"no activity for 2 min"}}
	rapid := Alert{ID: 1, Indicator: IndicatorRapidGuessing, Severity: SeverityWarning, CreatedAt: now.Add(-6 * time.Minute), TriggeredAt: now.Add(-6 * time.Minute), State: StateOpen, Reasons: []string{"guessing"}}
	critical := Alert{ID: 1, Indicator: Indicator(4), Severity: SeverityCritical, CreatedAt: now.Add(-6 * time.Minute), TriggeredAt: now.Add(-6 * time.Minute), State: StateOpen, Reasons: []string{"spinning"}}
	cases := []struct {
		name         string
		alerts       []Alert
		lastActivity time.Time
		want         StudentState
		indicators   []Indicator
	}{
		{"no activity known: still idle", []Alert{idle}, time.Time{}, StudentIdle, []Indicator{IndicatorIdle}},
		{"last event before the trigger: still idle", []Alert{idle}, idleAt.Add(-2 * time.Minute), StudentIdle, []Indicator{IndicatorIdle}},
		{"last event at the trigger: still idle", []Alert{idle}, idleAt, StudentIdle, []Indicator{IndicatorIdle}},
		{"an event after the trigger: ok", []Alert{idle}, idleAt.Add(time.Second), StudentOK, nil},
		{"back, an earlier live alert shows again", []Alert{rapid, idle}, now.Add(-time.Minute), StudentMisuse, []Indicator{IndicatorRapidGuessing}},
		{"idle hides the earlier alert while it holds", []Alert{rapid, idle}, idleAt.Add(-2 * time.Minute), StudentIdle, []Indicator{IndicatorIdle}},
		{"critical is not cleared by activity", []Alert{critical, idle}, now.Add(-time.Minute), StudentCritical, []Indicator{Indicator(4)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := Status("s", c.alerts, c.lastActivity, now)
			if st.State != c.want || !slices.Equal(st.ActiveIndicators, c.indicators) {
				t.Fatalf("status = %v with indicators %v, want %v with %v", st.State, st.ActiveIndicators, c.want, c.indicators)
			}
			if len(st.OpenAlertIDs) != len(c.alerts) {
				t.Fatalf("open alerts %v: an idle alert the student ended is still open until a teacher resolves it", st.OpenAlertIDs)
			}
		})
	}
}

// An alert's interventions grew without bound, and every reply carries an
// alert with all of them: 1,000 notes of 4 KiB made one alert larger than a
// client takes. The 101st intervention is now refused.
func TestAlertInterventionsAreCappedSoTheAlertFitsAReply(t *testing.T) {
	a := &Alert{State: StateOpen}
	for i := range MaxAlertInterventions {
		if err := a.Intervene(Intervention{TeacherID: "t1", Action: 1}); err != nil {
			t.Fatalf("intervention %d: %v", i+1, err)
		}
	}
	if err := a.Intervene(Intervention{TeacherID: "t1", Action: 1}); !errors.Is(err, ErrInterventionsFull) {
		t.Fatalf("intervention %d: %v, want ErrInterventionsFull", MaxAlertInterventions+1, err)
	}
	if len(a.Interventions) != MaxAlertInterventions {
		t.Fatalf("alert keeps %d interventions, want %d", len(a.Interventions), MaxAlertInterventions)
	}
}
