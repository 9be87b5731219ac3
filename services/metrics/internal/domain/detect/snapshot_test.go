package detect_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// A partition's new owner restores the last checkpoint and goes on: it must
// find exactly what the old owner would have found.
func TestSnapshotRestoreContinuesExactly(t *testing.T) {
	var all []ev
	for i := range 4 {
		all = append(all, slowStudent(uint64(i), fmt.Sprintf("slow-%d", i))...)
		all = append(all, struggler(fmt.Sprintf("str-%d", i), "fractions-7", 300+float64(i)*20)...)
		all = append(all, by(fmt.Sprintf("str-%d", i), start(290, "fractions-7")))
	}
	all = append(all, clicks(5, 0, 600, 600.3, 600.6, 600.9)...)
	all = append(all, keys(700, 0.5, "dddddddddddddddddddddddd")...)
	sortByTime(all)
	for _, cut := range []int{0, 1, len(all) / 3, len(all) / 2, len(all) - 3} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			whole := newEngine(detect.DefaultConfig())
			want := feed(whole, all...)
			want = append(want, whole.Tick(at(100000))...)

			first := newEngine(detect.DefaultConfig())
			got := feed(first, all[:cut]...)
			snap := first.Snapshot()
			second := newEngine(detect.DefaultConfig())
			if err := second.Restore(snap); err != nil {
				t.Fatal(err)
			}
			if second.Students() != first.Students() {
				t.Fatalf("restored %d students, had %d", second.Students(), first.Students())
			}
			got = append(got, feed(second, all[cut:]...)...)
			got = append(got, second.Tick(at(100000))...)
			if a, b := summary(got), summary(want); !slices.Equal(a, b) {
				t.Fatalf("after restore at %d:\n got %v\nwant %v", cut, a, b)
			}
			if len(want) < 5 {
				t.Fatalf("the script should find things, found %v", summary(want))
			}
		})
	}
}

func TestSnapshotKeepsHeldFindings(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	for _, e := range clicks(5, 0, 0, 0.1, 0.2) {
		en.Observe(e, e.OccurredAt)
	}
	other := newEngine(detect.DefaultConfig())
	if err := other.Restore(en.Snapshot()); err != nil {
		t.Fatal(err)
	}
	d := expectOne(t, other.Tick(at(1)), detect.RageClick, 0.2)
	expectReason(t, d, "3 clicks within 0.2 s at the same spot")
}

func TestRestoreRefusesDamagedSnapshots(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	feed(en, append(slowStudent(1, "a")[:200], clicks(5, 0, 0, 0.1, 0.2)...)...)
	snap := en.Snapshot()
	for n := range len(snap) {
		if err := newEngine(detect.DefaultConfig()).Restore(snap[:n]); !errors.Is(err, detect.ErrBadSnapshot) {
			t.Fatalf("a snapshot cut at %d of %d bytes: %v", n, len(snap), err)
		}
	}
	if err := newEngine(detect.DefaultConfig()).Restore(append([]byte{99}, snap[1:]...)); !errors.Is(err, detect.ErrBadSnapshot) {
		t.Fatalf("unknown version: %v", err)
	}
}

// A replay that finds an episode already stored (even at a slightly different
// time) stays silent once the stored finding is recorded.
func TestRecordReportedHoldsTheCooldownAcrossOwners(t *testing.T) {
	en := newEngine(detect.DefaultConfig())
	en.RecordReported(detect.Detection{ClassroomID: "c1", StudentID: "s1", Indicator: detect.RageClick, TriggeredAt: at(0.9)})
	en.RecordReported(detect.Detection{ClassroomID: "c1", Indicator: detect.ClassroomHotspot, ItemID: "f", TriggeredAt: at(0.9)})
	expectNone(t, feed(en, clicks(5, 0, 0, 0.4, 0.8)...), detect.RageClick)
	expectOne(t, feed(en, clicks(5, 0, 700, 700.4, 700.8)...), detect.RageClick, 700.8)
}

func summary(ds []detect.Detection) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s/%s/%s/%s@%s %s %q %v", d.ClassroomID, d.StudentID, d.Indicator, d.ItemID, d.TriggeredAt.Sub(t0), d.Severity, d.Reasons, d.Evidence))
	}
	slices.Sort(out)
	return out
}
