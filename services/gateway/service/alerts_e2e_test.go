package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// Every rage click posted to POST /v1/metrics becomes exactly one alert,
// across a restart of the dashboard and a restart of the metrics service,
// each while clicks keep coming.
func TestAlertsExactlyOnceAcrossRestartsEndToEnd(t *testing.T) {
	sys := startSystem(t, dashboardtest.Options{})
	sys.warmUp()
	sys.assign("t1", "room-e2e", "")
	n := 0
	click := func(count int) {
		for range count {
			n++
			sys.post(sys.rageClick("room-e2e", fmt.Sprintf("s%03d", n)))
		}
	}
	click(10)
	sys.waitAlerts("t1", 10, 30*time.Second)
	sys.dash.Stop()
	click(10) // detected while the dashboard is down
	sys.dash.Restart()
	sys.waitAlerts("t1", 20, 30*time.Second)
	sys.metrics.Stop()
	sys.metrics.Restart()
	click(10)
	got := sys.waitAlerts("t1", 30, 60*time.Second)

	students := map[string]int{}
	events := map[uint64]int{}
	for _, a := range got {
		students[a.GetStudentId()]++
		events[a.GetFrustrationEventId()]++
	}
	for i := 1; i <= n; i++ {
		if s := fmt.Sprintf("s%03d", i); students[s] != 1 {
			t.Errorf("student %s has %d alerts, want 1", s, students[s])
		}
	}
	for id, c := range events {
		if c != 1 {
			t.Errorf("frustration event %d has %d alerts", id, c)
		}
	}
	if len(got) != n {
		t.Fatalf("%d alerts for %d rage clicks", len(got), n)
	}
}
