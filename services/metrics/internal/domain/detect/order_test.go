package detect_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

func TestOutOfOrderWithinTheReorderWindowIsJudgedInOrder(t *testing.T) {
	cases := []struct {
		name    string
		arrival []ev
		ind     detect.Indicator
		fireAt  float64
		reason  string
	}{
		{name: "rage clicks arriving backwards", ind: detect.RageClick, fireAt: 0.8, reason: "3 clicks within 0.8 s",
			arrival: []ev{click(0.8, 5, 5), click(0.4, 5, 5), click(0, 5, 5)}},
		{name: "a far click arriving late breaks a chain", ind: detect.RageClick, fireAt: -1,
			arrival: []ev{click(0, 5, 5), click(0.5, 5, 5), click(1.4, 5, 5), click(0.9, 500, 500)}},
		{name: "an error arriving after the answers it preceded", ind: detect.RapidGuessing, fireAt: 3,
			arrival: []ev{attempt(1, "x", false), attempt(2, "x", false), attempt(3, "x", false), errEv(0.5)}},
		{name: "the 10th attempt arriving first", ind: detect.Struggle, fireAt: 9,
			arrival: append([]ev{attempt(9, "f", false)}, attempts("f", 0, 1, "010000100")...)},
		{name: "a mastering streak completed by a late answer", ind: detect.WheelSpinning, fireAt: -1,
			arrival: append(attempts("f", 0, 1, "0000001100"), attempt(5.5, "f", true))},
		{name: "a late finish page view: the student was not mid-item", ind: detect.Idle, fireAt: -1,
			arrival: []ev{start(0, "f"), key(1, false), hint(123), finish(119, "f")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			en := newEngine(detect.DefaultConfig())
			// Everything arrives within the report delay, out of order.
			var ds []detect.Detection
			for i, e := range tc.arrival {
				ds = append(ds, en.Observe(e, at(1000+float64(i)*0.01))...)
			}
			ds = append(ds, en.Tick(at(1001))...)
			if tc.fireAt < 0 {
				expectNone(t, ds, tc.ind)
				return
			}
			d := expectOne(t, ds, tc.ind, tc.fireAt)
			if tc.reason != "" {
				expectReason(t, d, tc.reason)
			}
		})
	}
}

// Shuffling a student's events within the reorder window finds exactly what
// the right order finds.
func TestShuffledWithinTheWindowMatchesInOrder(t *testing.T) {
	script := []ev{start(0, "f")}
	script = append(script, clicks(5, 1, 1, 1.3, 1.6, 1.9)...)
	script = append(script, keys(3, 0.2, "adddadddaddddaddddadddd")...)
	script = append(script, errEv(8))
	script = append(script, attempts("f", 8.5, 0.6, "0001000100100")...)
	script = append(script, rating(17, "f", 2))
	sortByTime(script)
	want := indicators(feedAt(newEngine(detect.DefaultConfig()), script))
	slices.Sort(want)
	if len(want) < 5 {
		t.Fatalf("the script should find several indicators, found %v", want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tried := 0
	for round := range 200 {
		shuffled := slices.Clone(script)
		// Swap neighbours less than 4 s apart at random: every event stays
		// within the 5 s window of the latest one seen.
		for i := range shuffled {
			j := i + rng.IntN(6)
			if j < len(shuffled) && shuffled[j].OccurredAt.Sub(shuffled[i].OccurredAt) < 4*time.Second {
				shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
			}
		}
		if !withinWindow(shuffled, detect.DefaultReorderWindow) {
			continue
		}
		tried++
		got := indicators(feedAt(newEngine(detect.DefaultConfig()), shuffled))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: shuffled found %v, in order %v", round, got, want)
		}
	}
	if tried < 50 {
		t.Fatalf("only %d shuffles stayed within the window", tried)
	}
}

// withinWindow reports whether every event arrives no more than w behind the
// latest one before it.
func withinWindow(events []ev, w time.Duration) bool {
	var latest time.Time
	for _, e := range events {
		if latest.Sub(e.OccurredAt) >= w {
			return false
		}
		if e.OccurredAt.After(latest) {
			latest = e.OccurredAt
		}
	}
	return true
}

// feedAt observes events in the order given, all arriving within a second.
func feedAt(en *detect.Engine, events []ev) []detect.Detection {
	var out []detect.Detection
	for i, e := range events {
		out = append(out, en.Observe(e, at(100+float64(i)*0.001))...)
	}
	return append(out, en.Tick(at(101))...)
}

func TestLateEventDoesNotRepeatAnAlert(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	ds := feed(en, click(0, 5, 5), click(0.4, 5, 5), click(0.8, 5, 5))
	expectOne(t, ds, detect.RageClick, 0.8)
	// A click that happened between them arrives late: the chain is still
	// one chain, and it already alerted.
	ds = en.Observe(click(0.6, 5, 5), at(1.5))
	expectNone(t, ds, detect.RageClick)
	// A late click that starts the chain earlier moves its start, but the
	// alert key is in its cooldown.
	ds = en.Observe(click(0.1, 5, 5), at(1.6))
	expectNone(t, ds, detect.RageClick)
}

func TestEventsLaterThanTheWindowAreJudgedOnArrival(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	feed(en, click(0, 5, 5), key(20, false))
	// Two clicks from 19 s ago: more than the 5 s window behind the
	// keystroke; they still count, judged as they come.
	ds := append(en.Observe(click(0.3, 5, 5), at(21)), en.Observe(click(0.6, 5, 5), at(21))...)
	ds = append(ds, en.Tick(at(22))...)
	expectOne(t, ds, detect.RageClick, 0.6)
}

func TestCooldownAndDedup(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	var ds []detect.Detection
	// A chain, a pause, another chain within 10 min: one alert.
	ds = append(ds, feed(en, clicks(5, 0, 0, 0.2, 0.4)...)...)
	ds = append(ds, feed(en, clicks(5, 0, 60, 60.2, 60.4)...)...)
	// 10 min after the first: alerts again.
	ds = append(ds, feed(en, clicks(5, 0, 600.4, 600.6, 600.8)...)...)
	got := only(ds, detect.RageClick)
	if len(got) != 2 || !got[0].TriggeredAt.Equal(at(0.4)) || !got[1].TriggeredAt.Equal(at(600.8)) {
		t.Fatalf("rage clicks %v, want at 0.4 s and 10m0.8s", indicators(got))
	}
	if got[0].IdempotencyKey() == got[1].IdempotencyKey() || got[0].AlertKey() != got[1].AlertKey() {
		t.Fatal("two episodes of one alert key must share the alert key and differ in idempotency key")
	}
}

func TestAlertKeyIncludesTheItemOnlyWhereDesignSaysSo(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	ds := feed(en, append(attempts("a", 0, 2, "0000000000"), attempts("b", 20, 2, "0000000000")...)...)
	if got := only(ds, detect.Struggle); len(got) != 2 {
		t.Fatalf("struggle on two items: %v, want two alerts", indicators(got))
	}
	if got := only(ds, detect.WheelSpinning); len(got) != 2 {
		t.Fatalf("wheel spinning on two items: %v, want two alerts", indicators(got))
	}
	// rapid guessing is keyed per student: one alert.
	if got := only(ds, detect.RapidGuessing); len(got) != 0 {
		t.Fatalf("2 s apart is not rapid: %v", indicators(got))
	}
	a := detect.Detection{ClassroomID: "c", StudentID: "s", Indicator: detect.ErrorBurst, ItemID: "x"}
	b := a
	b.ItemID = "y"
	if a.AlertKey() != b.AlertKey() {
		t.Fatal("error_burst's alert key must not include the item")
	}
}

func TestClassroomsAndStudentsAreIndependent(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	a := click(0, 5, 5)
	b := by("s2", click(0.3, 5, 5))
	c := click(0.6, 5, 5)
	c.ClassroomID = "c2"
	if ds := feed(en, a, b, c); len(ds) != 0 {
		t.Fatalf("three clicks by three students or classrooms: %v", indicators(ds))
	}
}

func TestLateEventAfterTheReportDelayStillAddsWhatItReveals(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	ds := feed(en, click(0, 5, 5), click(0.8, 5, 5))
	expectNone(t, ds, detect.RageClick)
	// The click between them arrives 2 s later: within the reorder window,
	// past the report delay. The chain it completes is reported at once.
	ds = en.Observe(click(0.4, 5, 5), at(2.8))
	d := expectOne(t, ds, detect.RageClick, 0.8)
	expectReason(t, d, "3 clicks within 0.8 s")
}

func TestFindingsWaitForTheReportDelay(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	en.Observe(click(0, 5, 5), at(0))
	en.Observe(click(0.1, 5, 5), at(0.1))
	if ds := en.Observe(click(0.2, 5, 5), at(0.2)); len(ds) != 0 {
		t.Fatalf("reported before the report delay: %v", indicators(ds))
	}
	if next := en.NextDeadline(); !next.Equal(at(0.2).Add(detect.DefaultReportDelay)) {
		t.Fatalf("next deadline %v, want the report time", next.Sub(t0))
	}
	if ds := en.Tick(at(0.39)); len(ds) != 0 {
		t.Fatalf("reported early: %v", indicators(ds))
	}
	expectOne(t, en.Tick(at(0.4)), detect.RageClick, 0.2)
}
