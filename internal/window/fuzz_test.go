package window

import (
	"testing"
	"time"

	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

// FuzzWindowFromProto checks the time windows clients send (sessions,
// affinities): validation and Contains never panic, and a window that
// validates means the same on every replica, whatever the machine's own
// time zone: the task queue and every coordinator judge availability by it.
func FuzzWindowFromProto(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5}, int32(540), int32(1020), "Europe/Paris")
	f.Add([]byte{5}, int32(1320), int32(360), "America/New_York")
	f.Add([]byte{}, int32(0), int32(1440), "")
	f.Add([]byte{7, 1}, int32(1439), int32(1), "UTC")
	f.Add([]byte{0, 8}, int32(-1), int32(1441), "Nowhere/City")
	f.Add([]byte{3}, int32(600), int32(660), "Local")
	// Every 23 minutes through eight days, across a DST change in Europe
	// (2026-03-29): every weekday, at times that drift through the day.
	var probes []time.Time
	for at := time.Date(2026, 3, 25, 0, 7, 0, 0, time.UTC); len(probes) < 8*24*60/23; at = at.Add(23 * time.Minute) {
		probes = append(probes, at)
	}
	elsewhere := time.FixedZone("elsewhere", 11*3600+1800)
	f.Fuzz(func(t *testing.T, days []byte, start, end int32, zone string) {
		pw := &typev1.TimeWindow{StartMinute: start, EndMinute: end, TimeZone: zone}
		for _, d := range days {
			pw.Days = append(pw.Days, typev1.Weekday(d))
		}
		w, err := FromProto(pw)
		if err != nil {
			return
		}
		local := time.Local
		defer func() { time.Local = local }()
		for _, at := range probes {
			time.Local = time.UTC
			here := w.Contains(at)
			time.Local = elsewhere
			there := w.Contains(at)
			if here != there {
				t.Fatalf("window %+v contains %v on one machine and not on another: its meaning depends on the server's zone", w, at)
			}
		}
	})
}
