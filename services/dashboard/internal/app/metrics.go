package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

// Metrics are the dashboard's Prometheus instruments. A nil *Metrics records
// nothing (tests that build the use cases alone).
type Metrics struct {
	alerts      *prometheus.CounterVec
	slowCuts    prometheus.Counter
	lastEventID prometheus.Gauge
	followerLag prometheus.Gauge
}

// NewMetrics registers the dashboard's instruments in reg; live
// subscriptions are read from hub when scraped.
func NewMetrics(reg prometheus.Registerer, hub *Hub) *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "gaia", Subsystem: "dashboard", Name: name, Help: help}
	}
	m := &Metrics{
		alerts:   prometheus.NewCounterVec(prometheus.CounterOpts(opts("alerts_raised_total", "Alerts this replica's follower stored, by severity.")), []string{"severity"}),
		slowCuts: prometheus.NewCounter(prometheus.CounterOpts(opts("subscribers_cut_slow_total", "Live subscriptions cut because their alert buffer was full (DASHBOARD_SUBSCRIBER_BUFFER)."))),
		lastEventID: prometheus.NewGauge(prometheus.GaugeOpts(opts("follower_last_event_id",
			"Id of the last frustration event this replica's follower applied (0 before the first)."))),
		followerLag: prometheus.NewGauge(prometheus.GaugeOpts(opts("follower_lag_seconds",
			"Age (since it was triggered) of the last frustration event this replica's follower applied."))),
	}
	for _, s := range []alert.Severity{alert.SeverityInfo, alert.SeverityWarning, alert.SeverityHigh, alert.SeverityCritical} {
		m.alerts.WithLabelValues(severityLabel(s))
	}
	live := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("live_subscriptions", "Live alert subscriptions on this replica.")),
		func() float64 { return float64(hub.Subscribers()) })
	reg.MustRegister(m.alerts, m.slowCuts, m.lastEventID, m.followerLag, live)
	hub.metrics = m
	return m
}

func severityLabel(s alert.Severity) string {
	switch s {
	case alert.SeverityInfo:
		return "info"
	case alert.SeverityWarning:
		return "warning"
	case alert.SeverityHigh:
		return "high"
	case alert.SeverityCritical:
		return "critical"
	default:
		return "unspecified"
	}
}

func (m *Metrics) slowCut() {
	if m != nil {
		m.slowCuts.Inc()
	}
}

// applied records a batch of events the follower stored and the alerts it raised.
func (m *Metrics) applied(events []alert.Event, created []alert.Alert, now time.Time) {
	if m == nil || len(events) == 0 {
		return
	}
	for i := range created {
		m.alerts.WithLabelValues(severityLabel(created[i].Severity)).Inc()
	}
	last := events[len(events)-1]
	m.lastEventID.Set(float64(last.ID))
	if !last.TriggeredAt.IsZero() {
		m.followerLag.Set(max(0, now.Sub(last.TriggeredAt).Seconds()))
	}
}
