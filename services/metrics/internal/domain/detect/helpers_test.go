package detect_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// t0 is the start of every scripted lesson.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// ev builds events for student "s1" in classroom "c1" unless changed.
type ev = detect.Event

func base(sec float64, k detect.Kind) ev {
	return ev{ClassroomID: "c1", StudentID: "s1", AppID: "app", Kind: k, OccurredAt: at(sec)}
}

func click(sec float64, x, y int32) ev {
	e := base(sec, detect.KindClick)
	e.X, e.Y, e.HasXY = x, y, true
	return e
}

func attempt(sec float64, item string, correct bool) ev {
	e := base(sec, detect.KindAttempt)
	e.ItemID, e.Correct, e.HasCorrect = item, correct, true
	return e
}

func errEv(sec float64) ev { return base(sec, detect.KindError) }

func key(sec float64, deletion bool) ev {
	e := base(sec, detect.KindKeystroke)
	e.Key = "a"
	if deletion {
		e.Key = "backspace"
	}
	return e
}

func start(sec float64, item string) ev {
	e := base(sec, detect.KindPageView)
	e.ItemID, e.Action = item, "start"
	return e
}

func finish(sec float64, item string) ev {
	e := base(sec, detect.KindPageView)
	e.ItemID, e.Action = item, "finish"
	return e
}

func hint(sec float64) ev { return base(sec, detect.KindHint) }

func rating(sec float64, item string, r int32) ev {
	e := base(sec, detect.KindRating)
	e.ItemID, e.Rating = item, r
	return e
}

func by(student string, e ev) ev { e.StudentID = student; return e }

// feed observes events in the order given, each arriving when it happened
// (real time), running the engine's timers up to that moment first, and
// finally until the last finding is reported.
func feed(en *detect.Engine, events ...ev) []detect.Detection {
	var out []detect.Detection
	for _, e := range events {
		out = append(out, en.Tick(e.OccurredAt)...)
		out = append(out, en.Observe(e, e.OccurredAt)...)
	}
	if len(events) > 0 {
		out = append(out, en.Tick(events[len(events)-1].OccurredAt.Add(detect.DefaultReportDelay))...)
	}
	return out
}

// replay observes events all arriving at one wall instant (event-time
// replay), then waits out the report delay.
func replay(en *detect.Engine, now time.Time, events ...ev) []detect.Detection {
	var out []detect.Detection
	for _, e := range events {
		out = append(out, en.Observe(e, now)...)
	}
	return append(out, en.Tick(now.Add(detect.DefaultReportDelay))...)
}

func only(ds []detect.Detection, ind detect.Indicator) []detect.Detection {
	var out []detect.Detection
	for _, d := range ds {
		if d.Indicator == ind {
			out = append(out, d)
		}
	}
	return out
}

func indicators(ds []detect.Detection) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Indicator.String()+"@"+d.TriggeredAt.Sub(t0).String())
	}
	return out
}

func newEngine(cfg *detect.Config) *detect.Engine {
	return detect.NewEngine(detect.Options{Settings: func(string) *detect.Config { return cfg }})
}

func settingsConfig(t *testing.T, s detect.Settings) *detect.Config {
	t.Helper()
	if err := s.Validate("settings"); err != nil {
		t.Fatalf("settings: %v", err)
	}
	return s.Effective()
}

// expectOne asserts exactly one detection of ind, at trigger sec, and returns it.
func expectOne(t *testing.T, ds []detect.Detection, ind detect.Indicator, sec float64) detect.Detection {
	t.Helper()
	got := only(ds, ind)
	if len(got) != 1 {
		t.Fatalf("want one %s, got %d: %v", ind, len(got), indicators(ds))
	}
	if want := at(sec); !got[0].TriggeredAt.Equal(want) {
		t.Fatalf("%s triggered at %v, want %v", ind, got[0].TriggeredAt.Sub(t0), want.Sub(t0))
	}
	return got[0]
}

func expectNone(t *testing.T, ds []detect.Detection, ind detect.Indicator) {
	t.Helper()
	if got := only(ds, ind); len(got) != 0 {
		t.Fatalf("want no %s, got %v (reasons %q)", ind, indicators(got), got[0].Reasons)
	}
}

func expectReason(t *testing.T, d detect.Detection, want string) {
	t.Helper()
	if !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.Contains(r, want) }) {
		t.Fatalf("reasons %q do not say %q", d.Reasons, want)
	}
}
