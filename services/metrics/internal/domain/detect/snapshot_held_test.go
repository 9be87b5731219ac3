package detect_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// Snapshots taken at any moment, findings still held, restore into an
// engine that finds exactly what the original would have.
func TestSnapshotAtAnyMomentRestores(t *testing.T) {
	var all []ev
	for i := range 5 {
		id := fmt.Sprintf("kid-%d", i)
		all = append(all, by(id, start(0, "f")))
		for _, e := range clicks(100, 0, 0.1*float64(i), 0.1*float64(i)+0.2, 0.1*float64(i)+0.4) {
			all = append(all, by(id, e))
		}
		all = append(all, struggler(id, "f", 2+float64(i)*0.1)...)
		for _, e := range keys(30, 0.1, "dddddddddddddddddddddddd") {
			all = append(all, by(id, e))
		}
	}
	sortByTime(all)
	run := func(cut int) []string {
		en := newEngine(detect.DefaultConfig())
		var got []detect.Detection
		for i, e := range all {
			if i == cut {
				snap := en.Snapshot()
				en = newEngine(detect.DefaultConfig())
				if err := en.Restore(snap); err != nil {
					t.Fatalf("restore at %d: %v", cut, err)
				}
			}
			got = append(got, en.Tick(e.OccurredAt)...)
			got = append(got, en.Observe(e, e.OccurredAt)...)
		}
		got = append(got, en.Tick(at(10000))...)
		return summary(got)
	}
	want := run(-1)
	if len(want) < 20 {
		t.Fatalf("want many findings, got %v", want)
	}
	for cut := range all {
		if got := run(cut); !slices.Equal(got, want) {
			t.Fatalf("snapshot before event %d:\n got %v\nwant %v", cut, got, want)
		}
	}
}
