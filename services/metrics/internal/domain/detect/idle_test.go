package detect_test

import (
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

const grace = detect.DefaultIdleGrace

func TestIdleFiresOnTheServerTimerWithNothingMoreComing(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	feed(en, start(0, "fractions-7"), key(10, false), click(30, 5, 5))
	if d := en.NextDeadline(); d.IsZero() || d.After(at(150).Add(grace)) {
		t.Fatalf("next deadline %v, want no later than last event + 2 min + grace", d.Sub(t0))
	}
	if ds := en.Tick(at(149.9)); len(ds) != 0 {
		t.Fatalf("idle before 2 min of silence: %v", indicators(ds))
	}
	ds := en.Tick(at(150).Add(grace))
	d := expectOne(t, ds, detect.Idle, 150)
	expectReason(t, d, "no activity for 2 min while working on item fractions-7")
	if d.ItemID != "fractions-7" || d.Severity != detect.Warning {
		t.Fatalf("idle detection %+v", d)
	}
	// The same silence never alerts twice, whatever else ticks.
	if ds := en.Tick(at(400)); len(ds) != 0 {
		t.Fatalf("second tick: %v", indicators(ds))
	}
	// The student comes back: no second idle for the silence that ended.
	if ds := feed(en, click(500, 5, 5)); len(only(ds, detect.Idle)) != 0 {
		t.Fatalf("return after the silence: %v", indicators(ds))
	}
}

func TestIdleNearMisses(t *testing.T) {
	cases := []struct {
		name   string
		events []ev
	}{
		{"1 min 50 s of silence", []ev{start(0, "a"), key(10, false), key(120, false), finish(125, "a")}},
		{"finishes the item before going quiet", []ev{start(0, "a"), key(10, false), finish(20, "a")}},
		{"never started an item", []ev{key(0, false), click(10, 5, 5)}},
		{"a start without an item", []ev{start(0, ""), key(10, false)}},
		{"a slow student pausing 1 min 59 s between steps", []ev{start(0, "a"), key(119, false), key(238, false), attempt(357, "a", true), finish(358, "a")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			en := newEngine(detect.DefaultConfig())
			ds := feed(en, tc.events...)
			ds = append(ds, en.Tick(at(10000))...)
			expectNone(t, ds, detect.Idle)
		})
	}
}

func TestIdleAtExactlyTheTimeoutIsIdle(t *testing.T) {
	// "Within W" means now − t < W: an event exactly 2 min later comes after
	// 2 min of silence.
	en := newEngine(detect.DefaultConfig())
	ds := replay(en, at(0), start(0, "a"), key(10, false), key(130, false))
	expectOne(t, ds, detect.Idle, 130)
}

func TestIdleRevealedByTheNextEventInReplay(t *testing.T) {
	// Event-time replay: everything arrives at once, long after it happened.
	// The timer cannot have fired, but the gap is there in the events.
	en := newEngine(detect.DefaultConfig())
	now := at(100000)
	ds := replay(en, now, start(0, "a"), key(30, false), key(200, false), key(210, false), finish(220, "a"))
	d := expectOne(t, ds, detect.Idle, 150)
	if d.Evidence["silence_seconds"] != 170 {
		t.Fatalf("evidence %v, want the 170 s silence", d.Evidence)
	}
	ds = en.Tick(now.Add(time.Hour))
	expectNone(t, ds, detect.Idle)
}

func TestIdleTimerDoesNotFireEarlyForOldEvents(t *testing.T) {
	// Events replayed an hour late: the timer waits for real silence after
	// their arrival (minus the skew tolerance), then reports at event time.
	en := newEngine(detect.DefaultConfig())
	arrival := at(3600)
	replay(en, arrival, start(0, "a"), key(10, false))
	if ds := en.Tick(arrival.Add(time.Minute)); len(ds) != 0 {
		t.Fatalf("idle one minute after arrival: %v", indicators(ds))
	}
	ds := en.Tick(arrival.Add(2*time.Minute - detect.DefaultClockSkewTolerance + grace))
	expectOne(t, ds, detect.Idle, 130)
}

func TestEachSilenceIsANewEpisodeOutsideTheCooldown(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	var ds []detect.Detection
	ds = append(ds, feed(en, start(0, "a"), key(0, false))...)
	ds = append(ds, en.Tick(at(120).Add(grace))...) // first silence
	ds = append(ds, feed(en, key(300, false))...)
	ds = append(ds, en.Tick(at(420).Add(grace))...) // second silence, within 10 min of the first: cooled down
	ds = append(ds, feed(en, key(800, false))...)
	ds = append(ds, en.Tick(at(920).Add(grace))...) // third silence, 800 s after the first
	got := only(ds, detect.Idle)
	if len(got) != 2 || !got[0].TriggeredAt.Equal(at(120)) || !got[1].TriggeredAt.Equal(at(920)) {
		t.Fatalf("idle episodes %v, want at 2m0s and 15m20s", indicators(got))
	}
}

func TestOtherIndicatorsSuppressedWhileIdle(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	feed(en, start(0, "a"), key(0, false), click(10, 5, 5))
	expectOne(t, en.Tick(at(130).Add(grace)), detect.Idle, 130)
	// Clicks from before the silence arrive late (beyond the reorder
	// window): the student is idle, they do not alert.
	ds := replay(en, at(131), click(11, 5, 5), click(11.5, 5, 5), click(11.9, 5, 5))
	expectNone(t, ds, detect.RageClick)
	// A low rating from before the silence: suppressed too.
	ds = replay(en, at(131), rating(12, "a", 1))
	expectNone(t, ds, detect.LowRating)
	// The student comes back; now rage clicks alert.
	ds = feed(en, click(200, 5, 5), click(200.2, 5, 5), click(200.4, 5, 5))
	expectOne(t, ds, detect.RageClick, 200.4)
}

func TestIdleSettingChangesTheTimeout(t *testing.T) {
	s := detect.DefaultSettings("c1")
	s.Overrides.IdleTimeout = 30 * time.Second
	en := newEngine(settingsConfig(t, s))
	feed(en, start(0, "a"), key(5, false))
	expectOne(t, en.Tick(at(35).Add(grace)), detect.Idle, 35)
}
