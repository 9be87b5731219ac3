package window

import (
	"strings"
	"testing"
	"time"

	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

func TestTimeWindowContains(t *testing.T) {
	// 2026-11-23 is a Monday.
	at := func(day, hh, mm int) time.Time { return time.Date(2026, 11, 22+day, hh, mm, 0, 0, time.UTC) }
	cases := []struct {
		name string
		w    Window
		t    time.Time
		want bool
	}{
		{"inside, every day", Window{StartMinute: 9 * 60, EndMinute: 17 * 60}, at(1, 10, 0), true},
		{"end is exclusive", Window{StartMinute: 9 * 60, EndMinute: 17 * 60}, at(1, 17, 0), false},
		{"before start", Window{StartMinute: 9 * 60, EndMinute: 17 * 60}, at(1, 8, 59), false},
		{"wrong day", Window{Days: []Weekday{2}, StartMinute: 9 * 60, EndMinute: 17 * 60}, at(1, 10, 0), false},
		{"right day", Window{Days: []Weekday{1}, StartMinute: 9 * 60, EndMinute: 17 * 60}, at(1, 10, 0), true},
		{"wraps midnight, evening", Window{Days: []Weekday{1}, StartMinute: 22 * 60, EndMinute: 6 * 60}, at(1, 23, 0), true},
		{"wraps midnight, next morning belongs to the opening day", Window{Days: []Weekday{1}, StartMinute: 22 * 60, EndMinute: 6 * 60}, at(2, 5, 0), true},
		{"wraps midnight, morning of the opening day", Window{Days: []Weekday{1}, StartMinute: 22 * 60, EndMinute: 6 * 60}, at(1, 5, 0), false},
		{"Sunday night into Monday", Window{Days: []Weekday{7}, StartMinute: 22 * 60, EndMinute: 6 * 60}, at(1, 1, 0), true},
		{"time zone", Window{StartMinute: 9 * 60, EndMinute: 10 * 60, TimeZone: "Asia/Tokyo"}, at(1, 0, 30), true},
	}
	for _, c := range cases {
		if err := c.w.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := c.w.Contains(c.t); got != c.want {
			t.Errorf("%s: Contains(%v) = %v, want %v", c.name, c.t, got, c.want)
		}
	}
}

func TestTimeWindowValidate(t *testing.T) {
	for _, w := range []Window{
		{StartMinute: -1, EndMinute: 10},
		{StartMinute: 0, EndMinute: 1441},
		{StartMinute: 5, EndMinute: 5},
		{StartMinute: 0, EndMinute: 10, Days: []Weekday{8}},
		{StartMinute: 0, EndMinute: 10, TimeZone: "Mars/Olympus"},
	} {
		if err := w.Validate(); err == nil {
			t.Errorf("%+v validated", w)
		}
	}
}

// TestLocalTimeZoneIsRefused is what FuzzWindowFromProto found: time zone
// "Local" validated (time.LoadLocation knows it) and meant the zone of each
// machine reading the window, so a session could be available on one
// replica and not on another.
func TestLocalTimeZoneIsRefused(t *testing.T) {
	_, err := FromProto(&typev1.TimeWindow{StartMinute: 600, EndMinute: 660, TimeZone: "Local"})
	if err == nil || !strings.Contains(err.Error(), "Local") {
		t.Fatalf("FromProto with time zone Local = %v, want an error naming it", err)
	}
	for _, zone := range []string{"", "UTC", "Europe/Paris"} {
		if _, err := FromProto(&typev1.TimeWindow{StartMinute: 600, EndMinute: 660, TimeZone: zone}); err != nil {
			t.Errorf("time zone %q refused: %v", zone, err)
		}
	}
}
