package detect_test

import (
	"testing"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// indicatorCase is one scripted sequence for one indicator: it must fire
// exactly once at fireAt (seconds), or never when fireAt < 0.
type indicatorCase struct {
	name     string
	events   []ev
	fireAt   float64
	reason   string
	evidence map[string]float64
}

func runIndicatorCases(t *testing.T, ind detect.Indicator, cases []indicatorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := feed(newEngine(detect.DefaultConfig()), tc.events...)
			if tc.fireAt < 0 {
				expectNone(t, ds, ind)
				return
			}
			d := expectOne(t, ds, ind, tc.fireAt)
			if tc.reason != "" {
				expectReason(t, d, tc.reason)
			}
			for k, v := range tc.evidence {
				if got := d.Evidence[k]; got != v {
					t.Errorf("evidence %s = %v, want %v (all: %v)", k, got, v, d.Evidence)
				}
			}
			if d.ClassroomID != "c1" || d.StudentID != "s1" || d.Severity == 0 {
				t.Errorf("detection %+v lacks its classroom, student or severity", d)
			}
		})
	}
}

func clicks(x0 int32, dx int32, times ...float64) []ev {
	var out []ev
	for i, s := range times {
		out = append(out, click(s, x0+int32(i)*dx, 100))
	}
	return out
}

func TestRageClick(t *testing.T) {
	runIndicatorCases(t, detect.RageClick, []indicatorCase{
		{name: "3 clicks within 0.8 s at one spot", events: clicks(100, 2, 0, 0.4, 0.8), fireAt: 0.8,
			reason: "3 clicks within 0.8 s at the same spot", evidence: map[string]float64{"clicks": 3, "max_step_px": 2}},
		{name: "a long chain alerts once", events: clicks(100, 0, 0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8), fireAt: 0.6},
		{name: "1.2 s between clicks", events: clicks(100, 0, 0, 1.2, 2.4, 3.6), fireAt: -1},
		{name: "exactly 1 s between clicks is not within 1 s", events: clicks(100, 0, 0, 1, 2), fireAt: -1},
		{name: "just under 1 s", events: clicks(100, 0, 0, 0.999, 1.998), fireAt: 1.998},
		{name: "40 px apart", events: clicks(100, 40, 0, 0.2, 0.4, 0.6), fireAt: -1},
		{name: "exactly 30 px (|dx|+|dy|) apart", events: []ev{click(0, 100, 100), click(0.2, 120, 110), click(0.4, 140, 120)}, fireAt: -1},
		{name: "29 px apart", events: []ev{click(0, 100, 100), click(0.2, 120, 109), click(0.4, 140, 118)}, fireAt: 0.4},
		{name: "two clicks are a double click", events: clicks(100, 0, 0, 0.2), fireAt: -1},
		{name: "other events between clicks do not break the chain", events: []ev{click(0, 5, 5), key(0.1, false), click(0.5, 5, 5), hint(0.6), click(0.9, 5, 5)}, fireAt: 0.9},
		{name: "a click without a position breaks the chain", events: []ev{click(0, 5, 5), click(0.2, 5, 5), base(0.4, detect.KindClick), click(0.6, 5, 5), click(0.8, 5, 5)}, fireAt: -1},
		{name: "a fast student clicking around the page", events: []ev{click(0, 10, 10), click(0.3, 200, 40), click(0.6, 400, 300), click(0.9, 30, 500), click(1.2, 600, 20)}, fireAt: -1},
	})
}

// attempts builds attempts on one item, one every gap seconds from start,
// with the correctness given as a string of 1s and 0s.
func attempts(item string, start, gap float64, pattern string) []ev {
	var out []ev
	for i, c := range pattern {
		out = append(out, attempt(start+float64(i)*gap, item, c == '1'))
	}
	return out
}

func TestStruggle(t *testing.T) {
	runIndicatorCases(t, detect.Struggle, []indicatorCase{
		{name: "3 of 10 correct", events: attempts("fractions-7", 0, 20, "0100100100"), fireAt: 180,
			reason: "3 of the last 10 attempts on item fractions-7 correct", evidence: map[string]float64{"correct": 3, "window_attempts": 10}},
		{name: "2 of the last 10 correct", events: attempts("fractions-7", 0, 20, "0100000100"), fireAt: 180,
			reason: "2 of the last 10 attempts on item fractions-7 correct"},
		{name: "9 attempts, all wrong", events: attempts("fractions-7", 0, 20, "000000000"), fireAt: -1},
		{name: "4 of 10 correct", events: attempts("fractions-7", 0, 20, "0101010100"), fireAt: -1},
		{name: "the window slides: 4 of 10, then a wrong one pushes a right one out", events: attempts("f", 0, 20, "10010010100"), fireAt: 200},
		{name: "10 attempts spread over two items", events: append(attempts("a", 0, 20, "00000"), attempts("b", 100, 20, "00000")...), fireAt: -1},
		{name: "a careful student: 6 of 10 correct", events: attempts("f", 0, 45, "0110110110"), fireAt: -1},
		{name: "stays on: one alert however long it lasts", events: attempts("f", 0, 20, "0000000000000000000"), fireAt: 180},
	})
}

func TestRapidGuessing(t *testing.T) {
	runIndicatorCases(t, detect.RapidGuessing, []indicatorCase{
		{name: "three answers fired off right after errors", events: []ev{
			errEv(0), attempt(1, "x", false), attempt(2.5, "x", false), attempt(4, "x", true)}, fireAt: 4,
			reason: "3 of the last 3 attempts came less than 2 s after an error", evidence: map[string]float64{"guesses": 3}},
		{name: "exactly 2 s after the error is not within 2 s", events: []ev{
			errEv(0), attempt(2, "x", false), attempt(4, "x", false), attempt(6, "x", false)}, fireAt: -1},
		{name: "two guesses in the last 10", events: []ev{
			errEv(0), attempt(1, "x", false), attempt(2.5, "x", true), attempt(10, "x", true)}, fireAt: -1},
		{name: "a slow student answering wrong every 20 s", events: attempts("x", 0, 20, "0000000000"), fireAt: -1},
		{name: "guesses pushed out of the last 10 do not count", events: append([]ev{
			errEv(0), attempt(1, "x", false), attempt(2, "x", true)},
			attempts("x", 10, 10, "11111111011")...), fireAt: -1},
		{name: "across items", events: []ev{
			attempt(0, "a", false), attempt(1, "b", false), attempt(2, "c", false), attempt(3, "d", false)}, fireAt: 3},
	})
}

func TestWheelSpinning(t *testing.T) {
	runIndicatorCases(t, detect.WheelSpinning, []indicatorCase{
		{name: "10 attempts without 3 right in a row", events: attempts("fractions-7", 0, 20, "1101101101"), fireAt: 180,
			reason: "10 attempts on item fractions-7 without 3 correct in a row", evidence: map[string]float64{"attempts": 10}},
		{name: "9 attempts", events: attempts("f", 0, 20, "110110110"), fireAt: -1},
		{name: "mastered at attempts 4-6, then wrong again", events: attempts("f", 0, 20, "00011100000000"), fireAt: -1},
		{name: "mastered on the 10th attempt", events: attempts("f", 0, 20, "0000000111"), fireAt: -1},
		{name: "10 attempts over two items", events: append(attempts("a", 0, 20, "01010"), attempts("b", 100, 20, "01010")...), fireAt: -1},
		{name: "a fast student who masters each item at once", events: append(attempts("a", 0, 3, "111"), attempts("b", 9, 3, "0111")...), fireAt: -1},
	})
}

func errorsAt(times ...float64) []ev {
	var out []ev
	for i, s := range times {
		if i%2 == 0 {
			out = append(out, errEv(s))
		} else {
			out = append(out, attempt(s, "x", false))
		}
	}
	return out
}

func TestErrorBurst(t *testing.T) {
	runIndicatorCases(t, detect.ErrorBurst, []indicatorCase{
		{name: "5 errors within 40 s", events: errorsAt(0, 10, 20, 30, 40), fireAt: 40,
			reason: "5 errors within 40 s", evidence: map[string]float64{"errors": 5, "seconds": 40}},
		{name: "5 errors over exactly 60 s", events: errorsAt(0, 15, 30, 45, 60), fireAt: -1},
		{name: "5 errors within 59.9 s", events: errorsAt(0, 15, 30, 45, 59.9), fireAt: 59.9},
		{name: "4 errors", events: errorsAt(0, 1, 2, 3), fireAt: -1},
		{name: "right answers are not errors", events: append(errorsAt(0, 1), attempts("x", 2, 1, "111")...), fireAt: -1},
		{name: "an attempt without an answer is not an error", events: []ev{
			errEv(0), errEv(1), errEv(2), errEv(3), base(4, detect.KindAttempt)}, fireAt: -1},
		{name: "a slow student with an error a minute", events: errorsAt(0, 60, 120, 180, 240, 300, 360), fireAt: -1},
	})
}

func keys(start, gap float64, pattern string) []ev {
	var out []ev
	for i, c := range pattern {
		out = append(out, key(start+float64(i)*gap, c == 'd'))
	}
	return out
}

func TestKeystrokeThrash(t *testing.T) {
	runIndicatorCases(t, detect.KeystrokeThrash, []indicatorCase{
		{name: "20 keystrokes, half deletions", events: keys(0, 1, "adadadadadadadadadad"), fireAt: 19,
			reason: "10 of 20 keystrokes within 19 s were deletions (50 %)", evidence: map[string]float64{"keystrokes": 20, "deletions": 10}},
		{name: "19 keystrokes, all deletions", events: keys(0, 1, "ddddddddddddddddddd"), fireAt: -1},
		{name: "20 keystrokes, 9 deletions", events: keys(0, 1, "aadadadadadadadadada"), fireAt: -1},
		{name: "20 keystrokes spread over 30 s", events: append(keys(0, 1, "d"), keys(11.5, 1, "dadadadadadadadadad")...)[:20], fireAt: 29.5},
		{name: "the first of 20 keystrokes exactly 30 s before the last", events: append(keys(0, 1, "d"), keys(12, 1, "dadadadadadadadadad")...), fireAt: -1},
		{name: "delete is a deletion too", events: func() []ev {
			out := keys(0, 0.5, "aaaaaaaaaa")
			for i := range 10 {
				e := key(5+float64(i)*0.5, false)
				e.Key = "delete"
				out = append(out, e)
			}
			return out
		}(), fireAt: 9.5},
		{name: "a fast typist correcting now and then", events: keys(0, 0.1, "aaaaaaaadaaaaaaaaadaaaaaaaadaaaaaaaaadaaaaaaaadaaaaaaaaaaad"), fireAt: -1},
	})
}

func TestLowRating(t *testing.T) {
	runIndicatorCases(t, detect.LowRating, []indicatorCase{
		{name: "a rating of 2", events: []ev{rating(0, "fractions-7", 2)}, fireAt: 0, reason: "rated item fractions-7 2 of 5",
			evidence: map[string]float64{"rating": 2}},
		{name: "a rating of 1", events: []ev{rating(0, "fractions-7", 1)}, fireAt: 0},
		{name: "a rating of 3", events: []ev{rating(0, "fractions-7", 3)}, fireAt: -1},
		{name: "two low ratings within the cooldown alert once", events: []ev{rating(0, "a", 2), rating(60, "b", 1)}, fireAt: 0},
	})
	d := expectOne(t, feed(newEngine(detect.DefaultConfig()), rating(0, "x", 1)), detect.LowRating, 0)
	if d.Severity != detect.High {
		t.Errorf("a rating of 1 is %s, want high", d.Severity)
	}
	d = expectOne(t, feed(newEngine(detect.DefaultConfig()), rating(0, "x", 2)), detect.LowRating, 0)
	if d.Severity != detect.Warning {
		t.Errorf("a rating of 2 is %s, want warning", d.Severity)
	}
	// Each low rating is its own episode: after the cooldown the next one alerts.
	ds := feed(newEngine(detect.DefaultConfig()), rating(0, "a", 2), rating(601, "b", 2))
	if got := only(ds, detect.LowRating); len(got) != 2 {
		t.Fatalf("two low ratings 10 min apart: got %v", indicators(ds))
	}
}

func TestSeverities(t *testing.T) {
	want := map[detect.Indicator]detect.Severity{
		detect.RageClick: detect.Warning, detect.Struggle: detect.Warning, detect.RapidGuessing: detect.Warning,
		detect.WheelSpinning: detect.High, detect.ErrorBurst: detect.Warning, detect.KeystrokeThrash: detect.Info,
	}
	scripts := map[detect.Indicator][]ev{
		detect.RageClick:       clicks(5, 0, 0, 0.1, 0.2),
		detect.Struggle:        attempts("s", 0, 20, "1001001000"),
		detect.RapidGuessing:   []ev{errEv(29), attempt(30, "a", false), attempt(31, "a", false), attempt(32, "a", false)},
		detect.WheelSpinning:   attempts("w", 0, 20, "1101101101"),
		detect.ErrorBurst:      errorsAt(0, 20, 40, 45, 50),
		detect.KeystrokeThrash: keys(0, 1, "dddddddddddddddddddd"),
	}
	for ind, events := range scripts {
		ds := only(feed(newEngine(detect.DefaultConfig()), events...), ind)
		if len(ds) != 1 || ds[0].Severity != want[ind] {
			t.Errorf("%s: got %v, want one at %s", ind, ds, want[ind])
		}
	}
}

// A student with many signs at once is escalated: the third distinct
// indicator within the cooldown is one step more severe.
func TestSeverityEscalatesWithOtherSigns(t *testing.T) {
	events := append(clicks(5, 0, 0, 0.1, 0.2), keys(1, 0.1, "dddddddddddddddddddd")...)
	events = append(events, attempts("w", 10, 5, "1101101101")...)
	ds := feed(newEngine(detect.DefaultConfig()), events...)
	w := expectOne(t, ds, detect.WheelSpinning, 55)
	if w.Severity != detect.Critical {
		t.Fatalf("wheel spinning after rage clicks and thrashing is %s, want critical", w.Severity)
	}
	expectReason(t, w, "together with 2 other signs")
}

func TestAllIndicatorNamesRoundTrip(t *testing.T) {
	for _, ind := range detect.Indicators() {
		got, ok := detect.ParseIndicator(ind.String())
		if !ok || got != ind {
			t.Errorf("%d: %q parses to %d", ind, ind.String(), got)
		}
	}
	if len(detect.Indicators()) != 9 {
		t.Fatal("DESIGN.md names nine indicators")
	}
}
