package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Metrics are the queue's Prometheus metrics.
type Metrics struct {
	enqueued     *prometheus.CounterVec
	claimed      *prometheus.CounterVec
	completed    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	dead         *prometheus.CounterVec
	requeued     *prometheus.CounterVec
	claimLatency prometheus.Histogram
	panics       *prometheus.CounterVec
}

// NewMetrics registers the queue's metrics, and a collector of queue depth
// by state and type that asks depth at scrape time, on reg.
func NewMetrics(reg prometheus.Registerer, depth func(ctx context.Context) (map[task.State]map[string]int64, error)) *Metrics {
	m := &Metrics{
		enqueued:  prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "tasks_enqueued_total", Help: "Tasks enqueued (duplicates excluded)."}, []string{"task_type"}),
		claimed:   prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "tasks_claimed_total", Help: "Claims handed out."}, []string{"task_type"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "tasks_completed_total", Help: "Tasks completed."}, []string{"task_type"}),
		retried:   prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "tasks_retried_total", Help: "Failed attempts scheduled for retry."}, []string{"task_type"}),
		dead:      prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "tasks_dead_total", Help: "Tasks that failed for good through FailTask."}, []string{"task_type"}),
		requeued:  prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "claims_requeued_total", Help: "Claims taken back because their lease expired or their session ended, by outcome."}, []string{"reason", "outcome"}),
		panics:    prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "background_panics_total", Help: "Panics recovered in background jobs (reaper, reconciler, pruner), by job."}, []string{"job"}),
		claimLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "gaia", Subsystem: "taskqueue", Name: "claim_duration_seconds", Help: "ClaimTasks latency until tasks were handed out (long-poll waits included).",
			Buckets: []float64{.001, .0025, .005, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
	}
	reg.MustRegister(m.enqueued, m.claimed, m.completed, m.retried, m.dead, m.requeued, m.claimLatency, m.panics, &depthCollector{depth: depth})
	return m
}

var depthDesc = prometheus.NewDesc("gaia_taskqueue_tasks", "Tasks in the queue by state and type.", []string{"state", "task_type"}, nil)

type depthCollector struct {
	depth func(ctx context.Context) (map[task.State]map[string]int64, error)
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- depthDesc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	byState, err := c.depth(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	for state, byType := range byState {
		for typ, n := range byType {
			ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n), string(state), typ)
		}
	}
}
