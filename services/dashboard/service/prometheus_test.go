package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// waitScrape polls /metrics until the named series read as want (the
// exposition text without HELP and TYPE lines), failing past a deadline.
func waitScrape(t *testing.T, addr, want string, names ...string) {
	t.Helper()
	help := map[string]string{
		"gaia_dashboard_live_subscriptions":         "# HELP gaia_dashboard_live_subscriptions Live alert subscriptions on this replica.\n# TYPE gaia_dashboard_live_subscriptions gauge\n",
		"gaia_dashboard_alerts_raised_total":        "# HELP gaia_dashboard_alerts_raised_total Alerts this replica's follower stored, by severity.\n# TYPE gaia_dashboard_alerts_raised_total counter\n",
		"gaia_dashboard_follower_last_event_id":     "# HELP gaia_dashboard_follower_last_event_id Id of the last frustration event this replica's follower applied (0 before the first).\n# TYPE gaia_dashboard_follower_last_event_id gauge\n",
		"gaia_dashboard_subscribers_cut_slow_total": "# HELP gaia_dashboard_subscribers_cut_slow_total Live subscriptions cut because their alert buffer was full (DASHBOARD_SUBSCRIBER_BUFFER).\n# TYPE gaia_dashboard_subscribers_cut_slow_total counter\n",
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		name := strings.TrimSpace(line)
		name = name[:strings.IndexAny(name, "{ ")]
		if h, ok := help[name]; ok {
			b.WriteString(h)
			delete(help, name)
		}
		b.WriteString(strings.TrimSpace(line) + "\n")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := testutil.ScrapeAndCompare("http://"+addr+"/metrics", strings.NewReader(b.String()), names...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The Prometheus endpoint follows what the replica does: a subscription
// opening and closing moves the live gauge, a stored alert counts under its
// severity and moves the follower's last event id.
func TestPrometheusEndpoint(t *testing.T) {
	e := newEnv(t, dashboardtest.Options{Quiet: true})
	addr := e.dash.PrometheusAddr
	e.assign(t, "t1", "room-a")
	waitScrape(t, addr, `gaia_dashboard_live_subscriptions 0`, "gaia_dashboard_live_subscriptions")

	s := e.subscribe(t, &dashboardv1.SubscribeAlertsRequest{TeacherId: "t1"})
	waitScrape(t, addr, `gaia_dashboard_live_subscriptions 1`, "gaia_dashboard_live_subscriptions")

	ids := e.feed.Append(event("room-a", "s1", metricsv1.Indicator_INDICATOR_RAGE_CLICK, metricsv1.Severity_SEVERITY_CRITICAL))
	s.recv(t, 1, 15*time.Second)
	waitScrape(t, addr, fmt.Sprintf(`
gaia_dashboard_alerts_raised_total{severity="critical"} 1
gaia_dashboard_alerts_raised_total{severity="high"} 0
gaia_dashboard_alerts_raised_total{severity="info"} 0
gaia_dashboard_alerts_raised_total{severity="warning"} 0
gaia_dashboard_follower_last_event_id %d
gaia_dashboard_subscribers_cut_slow_total 0
`, ids[0]), "gaia_dashboard_alerts_raised_total", "gaia_dashboard_follower_last_event_id", "gaia_dashboard_subscribers_cut_slow_total")

	s.cancel()
	waitScrape(t, addr, `gaia_dashboard_live_subscriptions 0`, "gaia_dashboard_live_subscriptions")
}
