package detect_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// struggler makes student id struggle on item from start: 10 wrong attempts
// 2 s apart, the struggle detection at start + 18 s.
func struggler(id, item string, start float64) []ev {
	var out []ev
	for _, e := range attempts(item, start, 2, "0000000000") {
		out = append(out, by(id, e))
	}
	return out
}

// busy makes student id active at sec without struggling.
func busy(id string, sec float64) ev { return by(id, hint(sec)) }

func class(n int, sec float64) []ev {
	var out []ev
	for i := range n {
		out = append(out, busy(fmt.Sprintf("s%02d", i), sec))
	}
	return out
}

func TestClassroomHotspot(t *testing.T) {
	cases := []struct {
		name   string
		events [][]ev
		fireAt float64
		reason string
	}{
		{name: "3 of 10 active students struggle on one item", fireAt: 78, reason: "3 of 10 active students (30 %) struggled on item fractions-7 within 5 min",
			events: [][]ev{class(10, 0), struggler("s00", "fractions-7", 0), struggler("s01", "fractions-7", 30), struggler("s02", "fractions-7", 60)}},
		{name: "2 students struggling in a class of 5", fireAt: -1,
			events: [][]ev{class(5, 0), struggler("s00", "f", 0), struggler("s01", "f", 30)}},
		{name: "3 of 11 active students is under 30 %", fireAt: -1,
			events: [][]ev{class(11, 0), struggler("s00", "f", 0), struggler("s01", "f", 30), struggler("s02", "f", 60)}},
		{name: "3 students struggling on different items", fireAt: -1,
			events: [][]ev{class(5, 0), struggler("s00", "a", 0), struggler("s01", "b", 30), struggler("s02", "c", 60)}},
		{name: "struggles more than 5 min apart", fireAt: -1,
			events: [][]ev{class(5, 0), struggler("s00", "f", 0), struggler("s01", "f", 100), struggler("s02", "f", 318)}},
		{name: "students gone quiet for 5 min are not active", fireAt: 318, reason: "3 of 3 active students",
			events: [][]ev{class(10, 0), struggler("s00", "f", 100), struggler("s01", "f", 200), struggler("s02", "f", 300)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var all []ev
			for _, part := range tc.events {
				all = append(all, part...)
			}
			sortByTime(all)
			ds := feed(newEngine(detect.DefaultConfig()), all...)
			if tc.fireAt < 0 {
				expectNone(t, ds, detect.ClassroomHotspot)
				return
			}
			d := expectOne(t, ds, detect.ClassroomHotspot, tc.fireAt)
			expectReason(t, d, tc.reason)
			if d.StudentID != "" || d.ClassroomID != "c1" {
				t.Fatalf("hotspot %+v must be the classroom's, with no student", d)
			}
		})
	}
}

func TestHotspotSeverityCriticalWhenHalfTheClassStruggles(t *testing.T) {
	all := append(class(6, 0), struggler("s00", "f", 0)...)
	all = append(all, struggler("s01", "f", 1)...)
	all = append(all, struggler("s02", "f", 2)...)
	sortByTime(all)
	d := expectOne(t, feed(newEngine(detect.DefaultConfig()), all...), detect.ClassroomHotspot, 20)
	if d.Severity != detect.Critical {
		t.Fatalf("3 of 6 struggling: %s, want critical", d.Severity)
	}
}

func TestHotspotCountsStruggleEvenWhenTheStruggleIndicatorIsOff(t *testing.T) {
	s := detect.DefaultSettings("c1")
	s.Disabled = []detect.Indicator{detect.Struggle}
	all := append(class(5, 0), struggler("s00", "f", 0)...)
	all = append(all, struggler("s01", "f", 1)...)
	all = append(all, struggler("s02", "f", 2)...)
	sortByTime(all)
	ds := feed(newEngine(settingsConfig(t, s)), all...)
	expectNone(t, ds, detect.Struggle)
	expectOne(t, ds, detect.ClassroomHotspot, 20)
}

// sortByTime sorts stably, so that events at one instant keep their script
// order.
func sortByTime(events []ev) {
	slices.SortStableFunc(events, func(a, b ev) int { return a.OccurredAt.Compare(b.OccurredAt) })
}
