//go:build unix

package service_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/pgtest"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	gateway "github.com/gaia-platform/gaia/services/gateway/service"
	"github.com/gaia-platform/gaia/services/metrics/internal/adapters"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// Load generators for the metrics service: a real metrics service
// (metricstest, or the binary for the memory run) on a database of its own,
// driven over gRPC or through the REST gateway on loopback. The generator,
// the service, the gateway and PostgreSQL share the machine's CPUs, so each
// figure is set beside a baseline measured in the same run: a raw pgx
// CopyFrom of the same rows into the same table, and a bare gRPC round trip.
// One op of each benchmark is a whole measurement (-benchtime 1x).

const (
	// metricsBenchEventsVar overrides how many events the gRPC throughput
	// benchmark sends (and the raw COPY writes).
	metricsBenchEventsVar     = "GAIA_BENCH_METRICS_EVENTS"
	metricsBenchDefaultEvents = 200_000
	// metricsBenchClients send batches of 100–1,000 events at once over
	// metricsBenchConns connections; the raw COPY uses as many connections.
	metricsBenchClients = 8
	metricsBenchConns   = 2
	// metricsRESTClients post at once through the gateway for
	// metricsRESTInterval per request size.
	metricsRESTClients  = 200
	metricsRESTInterval = 10 * time.Second
	// The latency run offers metricsLatencyRate events a second in batches
	// of metricsLatencyBatch for metricsLatencyInterval.
	metricsLatencyRate     = 10_000
	metricsLatencyBatch    = 10
	metricsLatencyInterval = 10 * time.Second
	// metricsSoakVar sets the memory run's length (default 5m); the load is
	// the latency run's.
	metricsSoakVar     = "GAIA_BENCH_METRICS_SOAK"
	metricsSoakDefault = 5 * time.Minute
)

// classroomSim makes events as simulated classrooms do: 200 classrooms of 30
// students, each student working through items with attempts, clicks,
// keystrokes, hints and hesitations, a few attrs on page views and keys,
// each event stamped up to 2 s before it is made (live traffic).
type classroomSim struct {
	rng *rand.Rand
	seq atomic.Int64
}

func newClassroomSim(seed uint64) *classroomSim {
	return &classroomSim{rng: rand.New(rand.NewPCG(seed, seed+1))}
}

var simKinds = []usability.Kind{usability.KindAttempt, usability.KindAttempt, usability.KindClick, usability.KindClick, usability.KindKeystroke,
	usability.KindKeystroke, usability.KindKeystroke, usability.KindHint, usability.KindHesitation, usability.KindFocusLost, usability.KindPageView, usability.KindError}

func (s *classroomSim) event(prefix string) usability.Event {
	n := s.seq.Add(1)
	room := s.rng.IntN(200)
	e := usability.Event{
		EventID:     fmt.Sprintf("%s-%d", prefix, n),
		AppID:       "fractions-app",
		ClassroomID: fmt.Sprintf("room-%03d", room),
		StudentID:   fmt.Sprintf("student-%03d-%02d", room, s.rng.IntN(30)),
		ItemID:      fmt.Sprintf("item-%02d", s.rng.IntN(40)),
		Kind:        simKinds[s.rng.IntN(len(simKinds))],
		// Live traffic: the event happened a moment before it is sent.
		OccurredAt: time.Now().Add(-time.Duration(s.rng.IntN(2000)) * time.Millisecond).Truncate(time.Microsecond),
	}
	switch e.Kind {
	case usability.KindAttempt:
		c := s.rng.IntN(3) > 0
		e.Correct = &c
	case usability.KindClick:
		x, y := int32(s.rng.IntN(1280)), int32(s.rng.IntN(800))
		e.X, e.Y = &x, &y
	case usability.KindKeystroke:
		if s.rng.IntN(4) == 0 {
			e.Attrs = map[string]string{"key": "backspace"}
		}
	case usability.KindHesitation:
		e.Value = s.rng.Float64() * 20
	case usability.KindPageView:
		e.Attrs = map[string]string{"action": "start"}
	}
	return e
}

func eventToProto(e usability.Event) *metricsv1.UsabilityEvent {
	kind := metricsv1.EventKind(metricsv1.EventKind_value["EVENT_KIND_"+strings.ToUpper(string(e.Kind))])
	return &metricsv1.UsabilityEvent{EventId: e.EventID, AppId: e.AppID, ClassroomId: e.ClassroomID, StudentId: e.StudentID,
		ItemId: e.ItemID, Kind: kind, Correct: e.Correct, Value: e.Value, X: e.X, Y: e.Y,
		OccurredAt: timestamppb.New(e.OccurredAt), Attrs: e.Attrs}
}

// metricsBenchBatches splits n events into batches of 100–1,000.
func metricsBenchBatches(sim *classroomSim, prefix string, n int) [][]usability.Event {
	var out [][]usability.Event
	for n > 0 {
		size := min(n, 100+sim.rng.IntN(901))
		batch := make([]usability.Event, size)
		for i := range batch {
			batch[i] = sim.event(prefix)
		}
		out = append(out, batch)
		n -= size
	}
	return out
}

func metricsBenchEvents(b *testing.B) int {
	if v := os.Getenv(metricsBenchEventsVar); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("%s=%q: want a number of events of at least 1000", metricsBenchEventsVar, v)
		}
		return n
	}
	return metricsBenchDefaultEvents
}

func dialN(b *testing.B, addr, token string, n int) []*grpc.ClientConn {
	conns := make([]*grpc.ClientConn, n)
	for i := range conns {
		c, err := grpcclient.Dial(addr, grpcclient.WithBearer(token))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		conns[i] = c
	}
	return conns
}

// BenchmarkMetricsIngestThroughput sends N events in batches of 100–1,000
// from 8 gRPC clients, then writes N other events of the same shape with a
// raw pgx CopyFrom (one COPY per batch, 8 connections) into the same table,
// and reports both rates and their ratio.
func BenchmarkMetricsIngestThroughput(b *testing.B) {
	n := metricsBenchEvents(b)
	db := pgtest.NewDatabase(b)
	svc := metricstest.Start(b, db, metricsBenchOptions(b))
	conns := dialN(b, svc.Addr, svc.AdminToken, metricsBenchConns)
	pool := pgtest.Pool(b, db)
	for i := 0; i < b.N; i++ {
		sim := newClassroomSim(uint64(i + 1))
		grpcBatches := metricsBenchBatches(sim, fmt.Sprintf("g%d", i), n)
		reqs := make([]*metricsv1.RecordMetricsRequest, len(grpcBatches))
		for j, batch := range grpcBatches {
			reqs[j] = &metricsv1.RecordMetricsRequest{}
			for _, e := range batch {
				reqs[j].Events = append(reqs[j].Events, eventToProto(e))
			}
		}
		rawBatches := metricsBenchBatches(sim, fmt.Sprintf("raw%d", i), n)

		b.StartTimer()
		grpcElapsed := runParallel(b, len(reqs), metricsBenchClients, func(ctx context.Context, worker, j int) error {
			resp, err := metricsv1.NewMetricsServiceClient(conns[worker%len(conns)]).RecordMetrics(ctx, reqs[j])
			if err == nil && int(resp.Accepted) != len(reqs[j].Events) {
				err = fmt.Errorf("accepted %d of %d", resp.Accepted, len(reqs[j].Events))
			}
			return err
		})
		rawElapsed := runParallel(b, len(rawBatches), metricsBenchClients, func(ctx context.Context, _, j int) error {
			received := time.Now()
			batch := rawBatches[j]
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"metrics", adapters.EventsTable}, adapters.EventColumns, pgx.CopyFromSlice(len(batch), func(k int) ([]any, error) {
				return adapters.EventRow(&batch[k], received, k)
			}))
			return err
		})
		b.StopTimer()
		grpcRate, rawRate := float64(n)/grpcElapsed.Seconds(), float64(n)/rawElapsed.Seconds()
		b.ReportMetric(grpcRate, "events/s")
		b.ReportMetric(rawRate, "raw-copy-events/s")
		b.ReportMetric(grpcRate/rawRate, "ratio-to-raw-copy")
		b.ReportMetric(float64(n), "events")
	}
	groups, requests := scrapeSum(b, svc.PrometheusAddr, "gaia_metrics_group_commit_requests")
	_, events := scrapeSum(b, svc.PrometheusAddr, "gaia_metrics_group_commit_events")
	if groups > 0 {
		b.ReportMetric(events/groups, "events/commit")
		b.ReportMetric(requests/groups, "requests/commit")
	}
}

// runParallel runs jobs 0..n-1 on workers goroutines and returns the wall time.
func runParallel(b *testing.B, n, workers int, job func(ctx context.Context, worker, j int) error) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1)) - 1
				if j >= n {
					return
				}
				if err := job(ctx, w, j); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

// BenchmarkMetricsIngestREST posts single-event and 10-event requests through
// the REST gateway from 200 clients at once, each waiting for its answer,
// for 10 s per size, and reports the events stored per second (group commit
// merges the concurrent requests). The requests carry the kit's credential,
// which the metrics service checks; the gateway's per-credential rate limit
// is off, since it is what this measures around, not what it measures.
func BenchmarkMetricsIngestREST(b *testing.B) {
	db := pgtest.NewDatabase(b)
	svc := metricstest.Start(b, db, metricsBenchOptions(b))
	base := startGateway(b, svc.Addr, func(c *gateway.Config) { c.Auth.Limits.Rate = -1 })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: metricsRESTClients, MaxConnsPerHost: metricsRESTClients}}
	for i := 0; i < b.N; i++ {
		for _, size := range []int{1, 10} {
			sim := newClassroomSim(uint64(100*i + size))
			var stored atomic.Int64
			var failed atomic.Value
			deadline := time.Now().Add(metricsRESTInterval)
			var wg sync.WaitGroup
			start := time.Now()
			for range metricsRESTClients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						req := &metricsv1.RecordMetricsRequest{}
						for range size {
							req.Events = append(req.Events, eventToProto(sim.event(fmt.Sprintf("rest%d-%d", i, size))))
						}
						body, _ := protojson.Marshal(req)
						post, _ := http.NewRequest(http.MethodPost, base+"/v1/metrics", bytes.NewReader(body))
						post.Header.Set("Content-Type", "application/json")
						post.Header.Set("Authorization", "Bearer "+svc.AdminToken)
						resp, err := client.Do(post)
						if err != nil {
							failed.Store(err)
							return
						}
						var out struct {
							Accepted int `json:"accepted"`
						}
						err = jsonDecode(resp, &out)
						if err != nil || out.Accepted != size {
							failed.Store(fmt.Errorf("status %s, accepted %d of %d (%v)", resp.Status, out.Accepted, size, err))
							return
						}
						stored.Add(int64(size))
					}
				}()
			}
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(stored.Load())/time.Since(start).Seconds(), fmt.Sprintf("rest-%d-events/s", size))
		}
	}
	groups, requests := scrapeSum(b, svc.PrometheusAddr, "gaia_metrics_group_commit_requests")
	if groups > 0 {
		b.ReportMetric(requests/groups, "requests/commit")
	}
}

// BenchmarkMetricsLatency offers 10,000 events a second in batches of 10 over
// gRPC (open loop: a request leaves on schedule whether or not the previous
// ones were answered) for 10 s, and probes a bare gRPC health check of the
// same server at the same request rate; it reports the percentiles of both.
//
// Beside them it reports, from the service's own histograms, where a
// request waited: in the group committer until its group's write began
// (wait), and for that write (COPY and commit).
func BenchmarkMetricsLatency(b *testing.B) {
	db := pgtest.NewDatabase(b)
	svc := metricstest.Start(b, db, metricsBenchOptions(b))
	conns := dialN(b, svc.Addr, svc.AdminToken, metricsBenchConns)
	for i := 0; i < b.N; i++ {
		rec, health := offerLoad(b, conns, metricsLatencyInterval, fmt.Sprintf("lat%d", i))
		b.ReportMetric(float64(metricsLatencyRate), "offered-events/s")
		b.ReportMetric(percentile(rec, 50), "record-p50-ms")
		b.ReportMetric(percentile(rec, 99), "record-p99-ms")
		b.ReportMetric(percentile(health, 50), "grpc-p50-ms")
		b.ReportMetric(percentile(health, 99), "grpc-p99-ms")
	}
	m := scrape(b, svc.PrometheusAddr)
	for _, h := range []struct{ name, unit string }{
		{"gaia_metrics_group_commit_wait_seconds", "wait"},
		{"gaia_metrics_write_duration_seconds", "write"},
	} {
		b.ReportMetric(1000*histogramQuantile(m, h.name, 0.5), h.unit+"-p50-ms")
		b.ReportMetric(1000*histogramQuantile(m, h.name, 0.99), h.unit+"-p99-ms")
	}
	if groups := m["gaia_metrics_group_commit_requests_count"]; groups > 0 {
		b.ReportMetric(m["gaia_metrics_group_commit_requests_sum"]/groups, "requests/commit")
	}
}

// metricsBenchOptions are the service's settings for a benchmark:
// GAIA_BENCH_METRICS_WRITERS and GAIA_BENCH_METRICS_ROLLUP_INTERVAL, when
// set, change the group committer's writers and the rollups' interval, so
// that settings can be compared run against run.
func metricsBenchOptions(b *testing.B) metricstest.Options {
	opts := metricstest.Options{Quiet: true}
	if v := os.Getenv("GAIA_BENCH_METRICS_WRITERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("GAIA_BENCH_METRICS_WRITERS=%q: want a positive number", v)
		}
		opts.Writers = n
	}
	if v := os.Getenv("GAIA_BENCH_METRICS_ROLLUP_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("GAIA_BENCH_METRICS_ROLLUP_INTERVAL=%q: want a positive duration", v)
		}
		opts.RollupInterval = d
	}
	return opts
}

// histogramQuantile estimates the q quantile of a scraped Prometheus
// histogram, interpolating linearly inside the bucket that holds it (as
// PromQL's histogram_quantile does); the top finite bound when it lies
// beyond.
func histogramQuantile(m map[string]float64, name string, q float64) float64 {
	type bucket struct{ le, count float64 }
	var buckets []bucket
	prefix := name + `_bucket{le="`
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
		if err == nil {
			buckets = append(buckets, bucket{le, v})
		}
	}
	slices.SortFunc(buckets, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	if len(buckets) == 0 || buckets[len(buckets)-1].count == 0 {
		return 0
	}
	rank := q * buckets[len(buckets)-1].count
	lower, below := 0.0, 0.0
	for _, bk := range buckets {
		if bk.count >= rank {
			if math.IsInf(bk.le, 1) {
				return lower
			}
			if bk.count == below {
				return bk.le
			}
			return lower + (bk.le-lower)*(rank-below)/(bk.count-below)
		}
		lower, below = bk.le, bk.count
	}
	return lower
}

// offerLoad sends metricsLatencyRate events a second in batches for d and
// returns the RecordMetrics and health-check latencies in milliseconds.
func offerLoad(b *testing.B, conns []*grpc.ClientConn, d time.Duration, prefix string) (rec, health []float64) {
	sim := newClassroomSim(7)
	perSecond := metricsLatencyRate / metricsLatencyBatch
	tick := time.Second / time.Duration(perSecond)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed atomic.Value
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	end := time.Now().Add(d)
	for k := 0; time.Now().Before(end); k++ {
		<-ticker.C
		req := &metricsv1.RecordMetricsRequest{}
		for range metricsLatencyBatch {
			req.Events = append(req.Events, eventToProto(sim.event(prefix)))
		}
		conn := conns[k%len(conns)]
		wg.Add(2)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := metricsv1.NewMetricsServiceClient(conn).RecordMetrics(ctx, req)
			ms := float64(time.Since(t0).Microseconds()) / 1000
			if err != nil {
				failed.Store(err)
				return
			}
			mu.Lock()
			rec = append(rec, ms)
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			ms := float64(time.Since(t0).Microseconds()) / 1000
			if err != nil {
				failed.Store(err)
				return
			}
			mu.Lock()
			health = append(health, ms)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return rec, health
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// BenchmarkMetricsMemory runs the metrics binary as its own process under the
// latency run's load for GAIA_BENCH_METRICS_SOAK (default 5m) and samples its
// resident memory every 5 s; it reports the first sample after a 30 s
// warm-up, the last and the highest, in MB.
func BenchmarkMetricsMemory(b *testing.B) {
	soak := metricsSoakDefault
	if v := os.Getenv(metricsSoakVar); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			b.Fatalf("%s=%q: want a duration of at least 1m", metricsSoakVar, v)
		}
		soak = d
	}
	bin := buildMetrics(b)
	db := pgtest.NewDatabase(b)
	keys := authtest.New(b)
	proc := startMetricsProcess(b, keys, bin, db, "127.0.0.1:0")
	conns := dialN(b, proc.addr, keys.Admin(b), metricsBenchConns)
	for i := 0; i < b.N; i++ {
		var samples []float64
		done := make(chan struct{})
		go func() {
			defer close(done)
			offerLoad(b, conns, soak, fmt.Sprintf("soak%d", i))
		}()
		t := time.NewTicker(5 * time.Second)
		start := time.Now()
	sample:
		for {
			select {
			case <-done:
				break sample
			case <-t.C:
				if time.Since(start) >= 30*time.Second {
					samples = append(samples, rssMB(b, proc.cmd.Process.Pid))
				}
			}
		}
		t.Stop()
		if len(samples) == 0 {
			b.Fatal("no memory samples")
		}
		b.ReportMetric(samples[0], "rss-after-warmup-MB")
		b.ReportMetric(samples[len(samples)-1], "rss-end-MB")
		b.ReportMetric(slices.Max(samples), "rss-max-MB")
		b.ReportMetric(soak.Seconds(), "seconds")
	}
}

// rssMB reads VmRSS of a process from /proc.
func rssMB(b *testing.B, pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
