package app

// The detector's writes: findings (fenced by each partition's token),
// partitions stopped when a newer owner fences them out, checkpoints, and the
// detector's metrics.

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// writeAll writes every owned partition's findings in one transaction (one
// id lock, one INSERT), each fenced by its own token.
func (d *Detector) writeAll(ctx context.Context) {
	var ws []detect.PartitionFindings
	for _, p := range d.owned {
		if len(p.unwritten) > 0 {
			ws = append(ws, detect.PartitionFindings{Ref: p.ref, Detections: p.unwritten})
		}
	}
	if err := d.write(ctx, ws); err != nil {
		d.log.Warn("detector write failed; retrying", zap.Error(err))
	}
}

// write stores ws, clears what was written from the partitions' unwritten
// findings and stops the partitions a newer owner has taken over. On an
// error nothing was written: everything is retried next round (nothing is
// checkpointed past findings not yet written).
func (d *Detector) write(ctx context.Context, ws []detect.PartitionFindings) error {
	if len(ws) == 0 {
		return nil
	}
	stored, fenced, err := d.store.Write(ctx, ws)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if p := d.owned[w.Ref.Partition]; p != nil && p.ref == w.Ref {
			p.unwritten = p.unwritten[:0]
		}
	}
	for _, n := range fenced {
		d.fenced(n)
	}
	for _, e := range stored {
		d.met.found.WithLabelValues(e.Indicator.String()).Inc()
	}
	if len(ws) == 1 && len(fenced) == 1 {
		return detect.ErrFenced
	}
	return nil
}

// fenced stops a partition a newer owner has claimed, at once.
func (d *Detector) fenced(n int) {
	if _, ok := d.owned[n]; ok {
		d.log.Warn("detector partition taken over; stopping it", zap.Int("partition", n))
		delete(d.owned, n)
		d.met.owned.Set(float64(len(d.owned)))
	}
}

// fail handles a checkpoint that did not happen: a newer owner stops the
// partition here at once; anything else is retried next round.
func (d *Detector) fail(n int, err error) {
	if errors.Is(err, detect.ErrFenced) {
		d.fenced(n)
		return
	}
	d.log.Warn("detector checkpoint failed; retrying", zap.Int("partition", n), zap.Error(err))
}

func (d *Detector) checkpoint(ctx context.Context, p *partitionRun) error {
	if len(p.unwritten) > 0 {
		if err := d.write(ctx, []detect.PartitionFindings{{Ref: p.ref, Detections: p.unwritten}}); err != nil {
			return err
		}
	}
	cp := detect.Checkpoint{Events: p.pos, RatingsXid: p.ratingsXid, State: p.engine.Snapshot()}
	if err := d.store.SaveCheckpoint(ctx, p.ref, cp); err != nil {
		return err
	}
	p.savedAt = d.now()
	d.met.checkpointBytes.Observe(float64(len(cp.State)))
	return nil
}

type detectorMetrics struct {
	owned           prometheus.Gauge
	judged          prometheus.Counter
	found           *prometheus.CounterVec
	roundSeconds    prometheus.Histogram
	checkpointBytes prometheus.Histogram
}

func newDetectorMetrics(reg prometheus.Registerer) *detectorMetrics {
	const ns, sub = "gaia", "detector"
	m := &detectorMetrics{
		owned:  prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "partitions_owned", Help: "Detector partitions this replica owns."}),
		judged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_judged_total", Help: "Events and ratings the detector judged."}),
		found: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "frustration_events_total",
			Help: "Frustration events written, by indicator."}, []string{"indicator"}),
		roundSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "round_duration_seconds",
			Help: "Time of one read-judge-write round.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		checkpointBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "checkpoint_bytes",
			Help: "Size of a partition's saved state.", Buckets: prometheus.ExponentialBuckets(256, 4, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.owned, m.judged, m.found, m.roundSeconds, m.checkpointBytes)
	}
	return m
}
