package app

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Metrics are the queue's Prometheus metrics.
type Metrics struct {
	types        *TypeLabels
	enqueued     *prometheus.CounterVec
	claimed      *prometheus.CounterVec
	completed    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	dead         *prometheus.CounterVec
	requeued     *prometheus.CounterVec
	claimLatency prometheus.Histogram
	panics       *prometheus.CounterVec
}

// OtherTaskTypes is the task_type label of every type outside the bounded set.
const OtherTaskTypes = "other"

// TypeLabels bounds the task_type label: task types are chosen by clients,
// and each distinct value is a series of every counter. Types in Types get
// their own label; when Types is empty, the first Max distinct types seen
// do. Every other type is counted as OtherTaskTypes.
type TypeLabels struct {
	Types []string
	Max   int

	mu   sync.Mutex
	seen map[string]bool
}

// Of is the label for task type typ.
func (l *TypeLabels) Of(typ string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = make(map[string]bool, len(l.Types))
		for _, t := range l.Types {
			l.seen[t] = true
		}
	}
	if l.seen[typ] {
		return typ
	}
	if len(l.Types) == 0 && len(l.seen) < l.Max {
		l.seen[typ] = true
		return typ
	}
	return OtherTaskTypes
}

// NewMetrics registers the queue's metrics, and a collector of queue depth
// by state and type that asks depth at scrape time, on reg; types bounds
// their task_type label.
func NewMetrics(reg prometheus.Registerer, types *TypeLabels, depth func(ctx context.Context) (map[task.State]map[string]int64, error)) *Metrics {
	m := &Metrics{
		types:     types,
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
	reg.MustRegister(m.enqueued, m.claimed, m.completed, m.retried, m.dead, m.requeued, m.claimLatency, m.panics, &depthCollector{depth: depth, types: types})
	return m
}

var depthDesc = prometheus.NewDesc("gaia_taskqueue_tasks", "Tasks in the queue by state and type.", []string{"state", "task_type"}, nil)

type depthCollector struct {
	types *TypeLabels
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
		byLabel := map[string]int64{}
		for typ, n := range byType {
			byLabel[c.types.Of(typ)] += n
		}
		for label, n := range byLabel {
			ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n), string(state), label)
		}
	}
}

// typed is vec's counter for task type typ, under its bounded label.
func (m *Metrics) typed(vec *prometheus.CounterVec, typ string) prometheus.Counter {
	return vec.WithLabelValues(m.types.Of(typ))
}
