//go:build unix

package service_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/gaia-platform/gaia/internal/pgtest"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// Detection benchmarks: a real coordinator (one node, in process), a metrics
// service with its detector, PostgreSQL, and the load generator on one
// machine. One op is a whole measurement (-benchtime 1x).

func startDetectionBench(b *testing.B) *metricstest.Metrics {
	coord := coordtest.Start(b, 1, coordtest.Options{Quiet: true})
	db := pgtest.NewDatabase(b)
	svc := metricstest.Start(b, db, detectionBenchOptions(coord))
	waitPartitionsClaimed(b, pgtest.Pool(b, db))
	return svc
}

// detectionBenchOptions runs the detector on all 16 partitions.
func detectionBenchOptions(coord *coordtest.Cluster) metricstest.Options {
	return metricstest.Options{Quiet: true, Keys: coord.Keys,
		Detection: &metricstest.Detection{CoordinatorAddrs: coord.Addrs(), Partitions: 16, LockTTL: 5 * time.Second}}
}

// waitPartitionsClaimed waits until all 16 detector partitions have an owner
// in the store.
func waitPartitionsClaimed(b *testing.B, pool *pgxpool.Pool) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM metrics.detector_partitions WHERE fencing_token > 0`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 16 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d detector partitions claimed", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkDetectionLatency offers 10,000 events a second (batches of 10,
// simulated classrooms) for 10 s and, every 100 ms, a probe: three fast
// clicks of a new student in one batch. It reports the time from the
// probe's commit (RecordMetrics answered) to its rage click arriving on
// WatchFrustrationEvents, p50 and p99 — the detector's 200 ms report delay
// included — beside RecordMetrics' own p99 in the same run.
func BenchmarkDetectionLatency(b *testing.B) {
	svc := startDetectionBench(b)
	conns := dialN(b, svc.Addr, svc.AdminToken, metricsBenchConns)
	cli := metricsv1.NewMetricsServiceClient(conns[0])
	for i := 0; i < b.N; i++ {
		var probes []string
		for p := range 16 {
			probes = append(probes, fmt.Sprintf("probe-%d-%d", i, p))
		}
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := cli.WatchFrustrationEvents(ctx, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: probes})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		committed := map[string]time.Time{}
		var lat []float64
		received := make(chan struct{}, 1024)
		go func() {
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				e := resp.GetEvent()
				if e.GetIndicator() != metricsv1.Indicator_INDICATOR_RAGE_CLICK {
					continue
				}
				now := time.Now()
				mu.Lock()
				if at, ok := committed[e.GetStudentId()]; ok {
					lat = append(lat, float64(now.Sub(at).Microseconds())/1000)
				}
				mu.Unlock()
				received <- struct{}{}
			}
		}()
		rec := probeUnderLoad(b, conns, fmt.Sprintf("det%d", i), 100*time.Millisecond, 10*time.Second, received,
			func(k int) []*metricsv1.UsabilityEvent {
				student := fmt.Sprintf("p%d", k)
				at := time.Now().Add(-300 * time.Millisecond)
				var evs []*metricsv1.UsabilityEvent
				for c := range 3 {
					evs = append(evs, clickAt(fmt.Sprintf("%s-%d-%d", student, i, c), probes[k%len(probes)], student, at.Add(time.Duration(c)*100*time.Millisecond), 50))
				}
				return evs
			},
			func(k int) {
				mu.Lock()
				committed[fmt.Sprintf("p%d", k)] = time.Now()
				mu.Unlock()
			})
		cancel()
		mu.Lock()
		b.ReportMetric(float64(metricsLatencyRate), "offered-events/s")
		b.ReportMetric(float64(len(lat)), "probes")
		b.ReportMetric(percentile(lat, 50), "detect-p50-ms")
		b.ReportMetric(percentile(lat, 99), "detect-p99-ms")
		b.ReportMetric(percentile(rec, 99), "record-p99-ms")
		mu.Unlock()
	}
}

// BenchmarkDetectionIdleLatency measures how late idle is reported, under
// the latency run's load (10,000 events a second for 10 s, batches of 10):
// every 250 ms a new student in one of 16 probe classrooms (idle timeout 2 s)
// starts an item and types once, then goes quiet. It reports the time from
// the idle finding's trigger time (last event + timeout) to its arrival on
// WatchFrustrationEvents, p50, p99 and the worst (the target: < 1 s
// after the timeout), beside RecordMetrics' own p99 in the same run.
func BenchmarkDetectionIdleLatency(b *testing.B) {
	const idleTimeout = 2 * time.Second
	svc := startDetectionBench(b)
	conns := dialN(b, svc.Addr, svc.AdminToken, metricsBenchConns)
	cli := metricsv1.NewMetricsServiceClient(conns[0])
	for i := 0; i < b.N; i++ {
		var probes []string
		for p := range 16 {
			classroom := fmt.Sprintf("idle-probe-%d-%d", i, p)
			probes = append(probes, classroom)
			if _, err := cli.UpdateDetectionSettings(context.Background(), &metricsv1.UpdateDetectionSettingsRequest{
				Settings:   &metricsv1.DetectionSettings{ClassroomId: classroom, Thresholds: &metricsv1.DetectionThresholds{IdleTimeout: durationpb.New(idleTimeout)}},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"thresholds.idle_timeout"}}}); err != nil {
				b.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := cli.WatchFrustrationEvents(ctx, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: probes})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		var late []float64
		received := make(chan struct{}, 1024)
		go func() {
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				e := resp.GetEvent()
				if e.GetIndicator() != metricsv1.Indicator_INDICATOR_IDLE {
					continue
				}
				ms := float64(time.Since(e.GetTriggeredAt().AsTime()).Microseconds()) / 1000
				mu.Lock()
				late = append(late, ms)
				mu.Unlock()
				received <- struct{}{}
			}
		}()
		rec := probeUnderLoad(b, conns, fmt.Sprintf("idle%d", i), 250*time.Millisecond, idleTimeout+10*time.Second, received,
			func(k int) []*metricsv1.UsabilityEvent {
				student := fmt.Sprintf("quiet-%d", k)
				classroom := probes[k%len(probes)]
				now := time.Now()
				start := event(fmt.Sprintf("%s-%d-start", student, i), classroom, student, metricsv1.EventKind_EVENT_KIND_PAGE_VIEW, now.Add(-100*time.Millisecond))
				start.ItemId, start.Attrs = "fractions-7", map[string]string{"action": "start"}
				key := event(fmt.Sprintf("%s-%d-key", student, i), classroom, student, metricsv1.EventKind_EVENT_KIND_KEYSTROKE, now)
				key.ItemId = "fractions-7"
				return []*metricsv1.UsabilityEvent{start, key}
			}, nil)
		cancel()
		mu.Lock()
		if len(late) == 0 {
			b.Fatal("no quiet student was sent")
		}
		b.ReportMetric(float64(metricsLatencyRate), "offered-events/s")
		b.ReportMetric(float64(len(late)), "probes")
		b.ReportMetric(percentile(late, 50), "idle-late-p50-ms")
		b.ReportMetric(percentile(late, 99), "idle-late-p99-ms")
		b.ReportMetric(slices.Max(late), "idle-late-max-ms")
		b.ReportMetric(percentile(rec, 99), "record-p99-ms")
		mu.Unlock()
	}
}

// BenchmarkDetectionThroughput sends GAIA_BENCH_METRICS_EVENTS events (default
// 200,000) as fast as the service takes them, in batches of 100–1,000, and
// measures how long the detector takes to have judged them all: the ingest
// rate and the detector's rate over the same events, and their ratio (≥ 1:
// the detector keeps up with ingest).
func BenchmarkDetectionThroughput(b *testing.B) {
	svc := startDetectionBench(b)
	conns := dialN(b, svc.Addr, svc.AdminToken, metricsBenchConns)
	n := metricsBenchEvents(b)
	for i := 0; i < b.N; i++ {
		before := scrape(b, svc.PrometheusAddr)["gaia_detector_events_judged_total"]
		sim := newClassroomSim(uint64(i + 11))
		batches := metricsBenchBatches(sim, fmt.Sprintf("thr%d", i), n)
		reqs := make([]*metricsv1.RecordMetricsRequest, len(batches))
		for j, batch := range batches {
			reqs[j] = &metricsv1.RecordMetricsRequest{}
			for _, e := range batch {
				reqs[j].Events = append(reqs[j].Events, eventToProto(e))
			}
		}
		start := time.Now()
		runParallel(b, len(reqs), metricsBenchClients, func(ctx context.Context, worker, j int) error {
			_, err := metricsv1.NewMetricsServiceClient(conns[worker%len(conns)]).RecordMetrics(ctx, reqs[j])
			return err
		})
		ingest := time.Since(start)
		for {
			judged := scrape(b, svc.PrometheusAddr)["gaia_detector_events_judged_total"] - before
			if judged >= float64(n) {
				break
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("detector judged %.0f of %d events in 10 min", judged, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		detect := time.Since(start)
		b.ReportMetric(float64(n), "events")
		b.ReportMetric(float64(n)/ingest.Seconds(), "ingest-events/s")
		b.ReportMetric(float64(n)/detect.Seconds(), "detector-events/s")
		b.ReportMetric(ingest.Seconds()/detect.Seconds(), "ratio-to-ingest")
	}
}

// BenchmarkDetectionBacklogThroughput measures the detector's capacity
// against ingest's in one run, each on its own: GAIA_BENCH_METRICS_EVENTS
// events (default 200,000) are sent as BenchmarkDetectionThroughput sends
// them to a replica with the detector off (FRUSTRATION_DETECTION_ENABLED=
// false), which gives the ingest rate; once the classroom rollups have
// caught up and that replica has stopped, a replica with the detector on
// starts over the same database and coordinator, and the detector's rate is
// the events over the time from its first partition owned until it has
// judged them all. The live benchmark cannot reach 1× by construction (the
// detector reads an event only after it commits, so it ends a round after
// ingest); this one can.
//
// A partition never claimed starts at the horizon of its claim, so a
// detector started after the backlog would skip it. The detector therefore
// runs once before the first ingest, claims all 16 partitions and stops
// (a final checkpoint each, positions before any event): the replica that
// starts after the ingest resumes from those checkpoints, as one does after
// the detector has been down. Each op ends the same way, so the next op's
// backlog starts at its checkpoints too.
func BenchmarkDetectionBacklogThroughput(b *testing.B) {
	coord := coordtest.Start(b, 1, coordtest.Options{Quiet: true})
	db := pgtest.NewDatabase(b)
	pool := pgtest.Pool(b, db)
	detector := metricstest.Start(b, db, detectionBenchOptions(coord))
	waitPartitionsClaimed(b, pool)
	detector.Stop()
	ingest := metricstest.Start(b, db, metricstest.Options{Quiet: true, Keys: coord.Keys}) // Detection nil: FRUSTRATION_DETECTION_ENABLED=false
	conns := dialN(b, ingest.Addr, ingest.AdminToken, metricsBenchConns)
	n := metricsBenchEvents(b)
	for i := 0; i < b.N; i++ {
		if i > 0 {
			ingest.Restart()
		}
		var start int64
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM metrics.usability_events`).Scan(&start); err != nil {
			b.Fatal(err)
		}
		sim := newClassroomSim(uint64(i + 31))
		batches := metricsBenchBatches(sim, fmt.Sprintf("backlog%d", i), n)
		reqs := make([]*metricsv1.RecordMetricsRequest, len(batches))
		for j, batch := range batches {
			reqs[j] = &metricsv1.RecordMetricsRequest{}
			for _, e := range batch {
				reqs[j].Events = append(reqs[j].Events, eventToProto(e))
			}
		}
		ingestTime := runParallel(b, len(reqs), metricsBenchClients, func(ctx context.Context, worker, j int) error {
			_, err := metricsv1.NewMetricsServiceClient(conns[worker%len(conns)]).RecordMetrics(ctx, reqs[j])
			return err
		})
		// The backlog stands: nothing else is left running while the
		// detector works through it.
		waitRollupsFor(b, ingest.PrometheusAddr, n)
		ingest.Stop()

		restart := time.Now()
		detector.Restart()
		var owned, judged time.Time
		for judged.IsZero() {
			m := scrape(b, detector.PrometheusAddr)
			now := time.Now()
			if owned.IsZero() && m["gaia_detector_partitions_owned"] > 0 {
				owned = now
			}
			if got := m["gaia_detector_events_judged_total"]; got >= float64(n) {
				judged = now
				switch {
				case owned.IsZero():
					b.Fatal("events judged before any partition was seen owned")
				case got > float64(n):
					// Each event counts once, for its partition, past the
					// partition's position: more would be a replay.
					b.Fatalf("detector judged %.0f events, want the backlog's %d", got, n)
				}
			}
			if now.Sub(restart) > 10*time.Minute {
				b.Fatalf("detector judged %.0f of %d events in 10 min", m["gaia_detector_events_judged_total"], n)
			}
			if owned.IsZero() {
				time.Sleep(2 * time.Millisecond)
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
		detector.Stop() // final checkpoints: the next op's backlog starts there
		var stored int64
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM metrics.usability_events`).Scan(&stored); err != nil {
			b.Fatal(err)
		}
		if stored-start != int64(n) {
			b.Fatalf("%d events stored, want %d", stored-start, n)
		}
		detectTime := judged.Sub(owned)
		b.ReportMetric(float64(n), "events")
		b.ReportMetric(float64(n)/ingestTime.Seconds(), "ingest-events/s")
		b.ReportMetric(float64(n)/detectTime.Seconds(), "detector-events/s")
		b.ReportMetric(ingestTime.Seconds()/detectTime.Seconds(), "ratio-to-ingest")
		b.ReportMetric(float64(owned.Sub(restart).Milliseconds()), "start-to-owned-ms")
	}
}

// waitRollupsFor waits until a replica's classroom rollups have applied n
// events.
func waitRollupsFor(b *testing.B, promAddr string, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for scrape(b, promAddr)["gaia_metrics_rollup_events_total"] < float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("the rollups applied %.0f of %d events in 5 min", scrape(b, promAddr)["gaia_metrics_rollup_events_total"], n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeUnderLoad offers the latency benchmarks' load (offerLoad, its events
// named after prefix) and meanwhile, every interval, stores probe(k)'s
// events, calling stored(k) (if given) once they are; then it waits up to
// within for one arrival on received per probe stored. It returns
// RecordMetrics' latencies under the load.
func probeUnderLoad(b *testing.B, conns []*grpc.ClientConn, prefix string, every, within time.Duration, received <-chan struct{},
	probe func(k int) []*metricsv1.UsabilityEvent, stored func(k int)) []float64 {
	var sent atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := metricsv1.NewMetricsServiceClient(conns[k%len(conns)]).RecordMetrics(rctx, &metricsv1.RecordMetricsRequest{Events: probe(k)})
			rcancel()
			if err != nil {
				b.Error(err)
				return
			}
			if stored != nil {
				stored(k)
			}
			sent.Add(1)
		}
	}()
	rec, _ := offerLoad(b, conns, metricsLatencyInterval, prefix)
	close(stop)
	wg.Wait()
	deadline := time.After(within)
	for got := 0; got < int(sent.Load()); got++ {
		select {
		case <-received:
		case <-deadline:
			b.Fatalf("%d of %d probes arrived within %s of the end of the load", got, sent.Load(), within)
		}
	}
	return rec
}
