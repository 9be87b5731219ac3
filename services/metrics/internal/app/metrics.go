// Package app holds the metrics service's use cases: recording events through
// the group committer, ratings, classroom snapshots and the retention of the
// events table's partitions. It depends on the domain's interfaces only.
package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// Metrics are the metrics service's Prometheus metrics (gaia_metrics_*).
type Metrics struct {
	events        *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	batchEvents   prometheus.Histogram
	groupEvents   prometheus.Histogram
	groupRequests prometheus.Histogram
	writeLatency  prometheus.Histogram
	groupWait     prometheus.Histogram
	writeErrors   prometheus.Counter
	ratings       *prometheus.CounterVec
	rollupEvents  prometheus.Counter
	rollupLag     prometheus.Gauge
}

var sizeBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000}

// NewMetrics registers the metrics on reg; partitions, asked at scrape time,
// lists the events table's partitions (nil on TimescaleDB).
func NewMetrics(reg prometheus.Registerer, partitions func(ctx context.Context) ([]usability.Partition, error)) *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "gaia", Subsystem: "metrics", Name: name, Help: help}
	}
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "gaia", Subsystem: "metrics", Name: name, Help: help, Buckets: buckets})
	}
	m := &Metrics{
		events:        prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_total", "Usability events received, by outcome: accepted (newly stored), duplicate, rejected.")), []string{"outcome"}),
		rejected:      prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_rejected_total", "Usability events rejected, by the field at fault.")), []string{"field"}),
		batchEvents:   hist("record_batch_events", "Events per RecordMetrics request.", sizeBuckets),
		groupEvents:   hist("group_commit_events", "Events per group commit (one transaction).", sizeBuckets),
		groupRequests: hist("group_commit_requests", "RecordMetrics requests merged into one group commit.", sizeBuckets),
		writeLatency: hist("write_duration_seconds", "Time to write and commit one group of events.",
			[]float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5}),
		groupWait: hist("group_commit_wait_seconds", "Time a write waited in the group committer before its group's write began (queueing behind the groups in flight).",
			[]float64{.0001, .00025, .0005, .001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5}),
		writeErrors:  prometheus.NewCounter(prometheus.CounterOpts(opts("write_errors_total", "Group commits that failed (their callers were told to retry)."))),
		ratings:      prometheus.NewCounterVec(prometheus.CounterOpts(opts("ratings_total", "Ratings received, by outcome: accepted, duplicate.")), []string{"outcome"}),
		rollupEvents: prometheus.NewCounter(prometheus.CounterOpts(opts("rollup_events_total", "Events this replica applied to the classroom rollups."))),
		rollupLag: prometheus.NewGauge(prometheus.GaugeOpts(opts("rollup_lag_seconds",
			"Age (since receipt) of the newest event in this replica's last rollup step; 0 when it found nothing new."))),
	}
	for _, o := range []string{"accepted", "duplicate", "rejected"} {
		m.events.WithLabelValues(o)
	}
	reg.MustRegister(m.events, m.rejected, m.batchEvents, m.groupEvents, m.groupRequests, m.writeLatency, m.groupWait, m.writeErrors, m.ratings, m.rollupEvents, m.rollupLag)
	if partitions != nil {
		reg.MustRegister(&partitionCollector{list: partitions})
	}
	return m
}

func (m *Metrics) observeGroup(requests, events int, elapsed time.Duration, err error) {
	if err != nil {
		m.writeErrors.Inc()
		return
	}
	m.groupRequests.Observe(float64(requests))
	m.groupEvents.Observe(float64(events))
	m.writeLatency.Observe(elapsed.Seconds())
}

var (
	partitionsDesc      = prometheus.NewDesc("gaia_metrics_event_partitions", "Daily partitions of the events table present.", nil, nil)
	partitionOldestDesc = prometheus.NewDesc("gaia_metrics_event_partition_oldest_timestamp_seconds", "Start of the oldest partition present.", nil, nil)
	partitionNewestDesc = prometheus.NewDesc("gaia_metrics_event_partition_newest_timestamp_seconds", "End of the newest partition present (how far ahead partitions exist).", nil, nil)
)

type partitionCollector struct {
	list func(ctx context.Context) ([]usability.Partition, error)
}

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- partitionsDesc
	ch <- partitionOldestDesc
	ch <- partitionNewestDesc
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	parts, err := c.list(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(partitionsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(partitionsDesc, prometheus.GaugeValue, float64(len(parts)))
	if len(parts) > 0 {
		ch <- prometheus.MustNewConstMetric(partitionOldestDesc, prometheus.GaugeValue, float64(parts[0].From.Unix()))
		ch <- prometheus.MustNewConstMetric(partitionNewestDesc, prometheus.GaugeValue, float64(parts[len(parts)-1].To.Unix()))
	}
}
