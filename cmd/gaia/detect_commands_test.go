package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

func TestSetThreshold(t *testing.T) {
	th := &metricsv1.DetectionThresholds{}
	for _, kv := range []string{"idle_timeout=3m", "rage_click_min_clicks=4", "hotspot_min_fraction=0.25"} {
		if _, err := setThreshold(th, kv); err != nil {
			t.Fatalf("%s: %v", kv, err)
		}
	}
	if th.GetIdleTimeout().AsDuration() != 3*time.Minute || th.GetRageClickMinClicks() != 4 || th.GetHotspotMinFraction() != 0.25 {
		t.Fatalf("thresholds %v", th)
	}
	for _, bad := range []string{"idle_timeout", "nope=3", "idle_timeout=3", "rage_click_min_clicks=x", "=1"} {
		if _, err := setThreshold(th, bad); err == nil || !strings.Contains(err.Error(), "--threshold") {
			t.Errorf("%q: %v, want a usage error naming --threshold", bad, err)
		}
	}
}

func TestEditIndicators(t *testing.T) {
	got, err := editIndicators([]metricsv1.Indicator{metricsv1.Indicator_INDICATOR_IDLE}, []string{"keystroke_thrash"}, []string{"idle"})
	if err != nil || len(got) != 1 || got[0] != metricsv1.Indicator_INDICATOR_KEYSTROKE_THRASH {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := editIndicators(nil, []string{"sadness"}, nil); err == nil || !strings.Contains(err.Error(), "--disable") {
		t.Fatalf("unknown indicator: %v", err)
	}
}

func TestDetectionLine(t *testing.T) {
	line := detectionLine(&metricsv1.FrustrationEvent{EventId: 12, ClassroomId: "class-a", StudentId: "s1", ItemId: "fractions-7",
		Indicator: metricsv1.Indicator_INDICATOR_RAGE_CLICK, Severity: metricsv1.Severity_SEVERITY_WARNING,
		Reasons: []string{"3 clicks within 0.8 s at the same spot"}, TriggeredAt: timestamppb.Now()})
	for _, want := range []string{"#12", "warning", "rage_click", "class-a", "s1", "fractions-7", "3 clicks within 0.8 s at the same spot"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	hot := detectionLine(&metricsv1.FrustrationEvent{EventId: 1, ClassroomId: "c", Indicator: metricsv1.Indicator_INDICATOR_CLASSROOM_HOTSPOT, TriggeredAt: timestamppb.Now()})
	if !strings.Contains(hot, "(classroom)") {
		t.Errorf("hotspot line %q should say it is the classroom's", hot)
	}
}
