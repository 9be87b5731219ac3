//go:build unix

package service_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/pgtest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// Load generators for the task queue: a real taskqueue service (queuetest)
// on a database of its own, following a one-node in-process coordinator,
// driven over gRPC on loopback by many sessions at once. The load generator,
// the queue, the coordinator and PostgreSQL share the machine's two CPUs, so
// a figure means most as a ratio to a baseline measured in the same run:
// throughput against River working the same number of jobs on the same
// PostgreSQL (bench/river, which `make bench` runs just before), claim
// latency against a gRPC health check of the same server measured alongside.
//
// One op of each benchmark is a fixed piece of work (all the jobs; one
// measured interval), so -benchtime 1x is a whole measurement. The file
// builds on Unix only, for getrusage.

const (
	// queueBenchJobsVar overrides how many jobs the throughput benchmark
	// works; `make bench` sets it to the count it gives River.
	queueBenchJobsVar     = "GAIA_BENCH_QUEUE_JOBS"
	queueBenchDefaultJobs = 50_000
	// queueBenchEnqueueBatch is the size of one EnqueueTasks call;
	// queueBenchProducers make such calls at once.
	queueBenchEnqueueBatch = 500
	queueBenchProducers    = 4
	// queueBenchSessions claim at once, each up to queueBenchClaimMax tasks
	// a call within its max_concurrent_tasks of queueBenchSessionCapacity.
	// More sessions lower the figure on two cores: every claimer walks the
	// same head of the claim index past the rows the others hold locked.
	queueBenchSessions        = 16
	queueBenchClaimMax        = 100
	queueBenchSessionCapacity = 100
	// queueBenchConns carry the load: several HTTP/2 connections, as
	// several worker processes would open.
	queueBenchConns = 4
	// queueBenchTimeout bounds one op: a stuck benchmark fails.
	queueBenchTimeout = 2 * time.Minute
)

// The moderate load of the latency benchmark: tasks enqueued at a fixed rate
// well below the throughput benchmark's capacity, claimed by sessions polling
// without waiting on their own timers, each claim settled at once.
const (
	queueLatencyRate        = 500 // tasks a second, enqueued every queueLatencyEnqueueTick
	queueLatencyEnqueueTick = 10 * time.Millisecond
	queueLatencyPollTick    = 20 * time.Millisecond // each session's, and each health probe's
	queueLatencyInterval    = 10 * time.Second      // one op
	queueLatencySessions    = 8
	queueLatencyClaimMax    = 10
	queueLatencyHealthProbe = 4
)

// BenchmarkTaskQueueThroughput enqueues N jobs in batches of 500 from 4
// producers while 16 sessions (max_concurrent_tasks 100) claim up to 100 at
// a time and complete each claimed batch at once, and reports jobs/s: N over
// the time from the first EnqueueTasks call to the last CompleteTasks
// answer. One op is N jobs (GAIA_BENCH_QUEUE_JOBS, default 50,000) on a
// fresh database.
func BenchmarkTaskQueueThroughput(b *testing.B) { queueBenchThroughput(b, false) }

// BenchmarkTaskQueueBurnDown enqueues the N jobs first, the same way, and
// only then starts the 16 sessions; it reports N over the time from their
// start to the last CompleteTasks answer, as River's own benchmark times
// its burn-down mode (bench/river -mode burndown).
func BenchmarkTaskQueueBurnDown(b *testing.B) { queueBenchThroughput(b, true) }

func queueBenchThroughput(b *testing.B, burnDown bool) {
	jobs := queueBenchJobs(b)
	coord := coordtest.Start(b, 1, queueBenchCoordOptions)
	var jobsPerSec []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		q := queuetest.Start(b, pgtest.NewDatabase(b), coord.Addrs(), queuetest.Options{Quiet: true, ReapInterval: time.Second, Keys: coord.Keys})
		conns := queueBenchDial(b, q.Addr, q.AdminToken, queueBenchConns)
		sessions := queueBenchRegister(b, coord, queueBenchSessions, queueBenchSessionCapacity)
		keyPrefix := fmt.Sprintf("op%d", i)
		if burnDown {
			queueBenchEnqueue(b, conns, jobs, keyPrefix)
		}
		cpu := queueBenchCPU()
		b.StartTimer()

		elapsed := queueBenchRun(b, conns, sessions, jobs, keyPrefix, !burnDown)
		jobsPerSec = append(jobsPerSec, float64(jobs)/elapsed.Seconds())
		b.ReportMetric(float64(queueBenchCPU()-cpu)/float64(elapsed), "cpu-cores")
		b.StopTimer()
		q.Stop() // so that the next op's queue runs alone
		b.StartTimer()
	}
	// The slowest op, so that a longer benchtime never flatters the figure.
	b.ReportMetric(slices.Min(jobsPerSec), "jobs/s")
	b.ReportMetric(float64(jobs), "jobs")
}

// BenchmarkTaskQueueClaimLatency offers a moderate load for 10 s (500 tasks
// a second, enqueued 5 every 10 ms; 8 sessions each polling every 20 ms for
// up to 10 tasks without waiting, each claim completed at once) and reports
// the percentiles of the ClaimTasks round trip as the client sees it, of
// CompleteTask, and of a gRPC health check of the same server by 4 more
// goroutines every 20 ms: the baseline. One op is 10 s.
func BenchmarkTaskQueueClaimLatency(b *testing.B) {
	coord := coordtest.Start(b, 1, queueBenchCoordOptions)
	q := queuetest.Start(b, pgtest.NewDatabase(b), coord.Addrs(), queuetest.Options{Quiet: true, ReapInterval: time.Second, Keys: coord.Keys})
	conns := queueBenchDial(b, q.Addr, q.AdminToken, queueBenchConns)
	var claims, completes, health []time.Duration
	var enqueued, claimed int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sessions := queueBenchRegister(b, coord, queueLatencySessions, queueBenchSessionCapacity)
		b.StartTimer()
		r := queueLatencyRun(b, conns, sessions, fmt.Sprintf("op%d", i))
		claims, completes, health = append(claims, r.claims...), append(completes, r.completes...), append(health, r.health...)
		enqueued, claimed = enqueued+r.enqueued, claimed+r.claimed
	}
	// The rate asked for, and the rates reached: a queue that cannot keep up
	// claims less than was enqueued, and a slow enqueue misses ticks.
	seconds := float64(b.N) * queueLatencyInterval.Seconds()
	b.ReportMetric(float64(queueLatencyRate), "offered-jobs/s")
	b.ReportMetric(float64(enqueued)/seconds, "enqueued-jobs/s")
	b.ReportMetric(float64(claimed)/seconds, "claimed-jobs/s")
	queueBenchPercentiles(b, "claim", claims)
	queueBenchPercentiles(b, "complete", completes)
	queueBenchPercentiles(b, "health", health)
}

// queueBenchCoordOptions keeps every session live for the whole run without
// heartbeats: a session failing half-way would change what is measured.
var queueBenchCoordOptions = coordtest.Options{Quiet: true, LeaseTimeout: time.Hour, HeartbeatInterval: 10 * time.Second}

func queueBenchJobs(b *testing.B) int {
	v := os.Getenv(queueBenchJobsVar)
	if v == "" {
		return queueBenchDefaultJobs
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number of jobs", queueBenchJobsVar, v)
	}
	return n
}

type queueBenchSession struct {
	id, token string
}

// queueBenchRegister registers n sessions with the given capacity.
func queueBenchRegister(b *testing.B, coord *coordtest.Cluster, n, capacity int) []queueBenchSession {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueBenchTimeout)
	defer cancel()
	out := make([]queueBenchSession, n)
	for i := range out {
		resp, err := coord.Client().Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
			Name:               fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i),
			Tier:               coordinatorv1.SessionTier_SESSION_TIER_WORKER,
			Provider:           coordinatorv1.Provider_PROVIDER_CODEX,
			MaxConcurrentTasks: int32(capacity),
		})
		if err != nil {
			b.Fatalf("register session: %v", err)
		}
		out[i] = queueBenchSession{id: resp.GetSession().GetSessionId(), token: resp.GetSessionToken()}
	}
	return out
}

func queueBenchDial(b *testing.B, addr, token string, n int) []*grpc.ClientConn {
	b.Helper()
	conns := make([]*grpc.ClientConn, n)
	for i := range conns {
		conn, err := grpcclient.Dial(addr, grpcclient.WithBearer(token))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		conns[i] = conn
	}
	return conns
}

// queueBenchRun works jobs to completion, enqueueing them alongside when
// enqueue is set (else they are in the queue already), and returns the time
// from the start (the first enqueue, or the sessions' start) to the last
// completion.
func queueBenchRun(b *testing.B, conns []*grpc.ClientConn, sessions []queueBenchSession, jobs int, keyPrefix string, enqueue bool) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueBenchTimeout)
	defer cancel()
	var (
		wg        sync.WaitGroup
		errOnce   sync.Once
		firstErr  error
		completed atomic.Int64
		lastDone  atomic.Int64 // unix nanos of the last completion
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}
	start := time.Now()
	for w, s := range sessions {
		tasks := taskqueuev1.NewTaskServiceClient(conns[w%len(conns)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := queueBenchWork(ctx, tasks, s, int64(jobs), &completed, &lastDone); err != nil {
				fail(err)
			}
		}()
	}
	if enqueue {
		start = time.Now()
		queueBenchProduce(ctx, &wg, conns, jobs, keyPrefix, fail)
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("after %d of %d jobs: %v", completed.Load(), jobs, firstErr)
	}
	return time.Unix(0, lastDone.Load()).Sub(start)
}

// queueBenchEnqueue enqueues jobs as queueBenchRun does, with no one
// claiming, and returns once they are all in the queue.
func queueBenchEnqueue(b *testing.B, conns []*grpc.ClientConn, jobs int, keyPrefix string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueBenchTimeout)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	queueBenchProduce(ctx, &wg, conns, jobs, keyPrefix, func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	})
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// queueBenchProduce starts queueBenchProducers goroutines, counted in wg,
// that enqueue jobs in batches of queueBenchEnqueueBatch.
func queueBenchProduce(ctx context.Context, wg *sync.WaitGroup, conns []*grpc.ClientConn, jobs int, keyPrefix string, fail func(error)) {
	var next atomic.Int64 // the next job number to enqueue
	for p := range queueBenchProducers {
		tasks := taskqueuev1.NewTaskServiceClient(conns[p%len(conns)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				first := int(next.Add(queueBenchEnqueueBatch)) - queueBenchEnqueueBatch
				if first >= jobs {
					return
				}
				req := &taskqueuev1.EnqueueTasksRequest{}
				for j := first; j < min(first+queueBenchEnqueueBatch, jobs); j++ {
					req.Tasks = append(req.Tasks, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: fmt.Sprintf("%s-%d", keyPrefix, j), TaskType: "bench"})
				}
				if _, err := tasks.EnqueueTasks(ctx, req); err != nil {
					fail(fmt.Errorf("enqueue: %w", err))
					return
				}
			}
		}()
	}
}

// queueBenchWork claims and completes until every job is done.
func queueBenchWork(ctx context.Context, tasks taskqueuev1.TaskServiceClient, s queueBenchSession, jobs int64, completed, lastDone *atomic.Int64) error {
	for completed.Load() < jobs {
		resp, err := tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{
			SessionId: s.id, SessionToken: s.token, MaxTasks: queueBenchClaimMax, Wait: durationpb.New(100 * time.Millisecond),
		})
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		claims := resp.GetClaims()
		if len(claims) == 0 {
			continue
		}
		// One CompleteTasks call, and so one commit, per claimed batch.
		req := &taskqueuev1.CompleteTasksRequest{SessionId: s.id, SessionToken: s.token}
		for _, c := range claims {
			req.Claims = append(req.Claims, &taskqueuev1.CompletedClaim{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken()})
		}
		out, err := tasks.CompleteTasks(ctx, req)
		if err != nil {
			return fmt.Errorf("complete: %w", err)
		}
		for _, r := range out.GetResults() {
			if r.GetCode() != 0 {
				return fmt.Errorf("complete: code %d: %s", r.GetCode(), r.GetMessage())
			}
		}
		if completed.Add(int64(len(claims))) == jobs {
			lastDone.Store(time.Now().UnixNano())
		}
	}
	return nil
}

// queueLatencyResult is what one interval of moderate load measured.
type queueLatencyResult struct {
	claims, completes, health []time.Duration
	enqueued, claimed         int
}

// queueLatencyRun offers the moderate load for one interval.
func queueLatencyRun(b *testing.B, conns []*grpc.ClientConn, sessions []queueBenchSession, keyPrefix string) queueLatencyResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueBenchTimeout)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errOnce  sync.Once
		firstErr error
		res      queueLatencyResult
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}
	end := time.Now().Add(queueLatencyInterval)
	// every runs f every tick until the interval ends, the start staggered
	// by offset within the first tick so that callers do not move in step,
	// then collect under mu.
	every := func(tick, offset time.Duration, f func() error, collect func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				defer mu.Unlock()
				collect()
			}()
			time.Sleep(offset)
			ticker := time.NewTicker(tick)
			defer ticker.Stop()
			for time.Now().Before(end) && ctx.Err() == nil {
				if err := f(); err != nil {
					fail(err)
					return
				}
				select {
				case <-ctx.Done():
				case <-ticker.C:
				}
			}
		}()
	}

	tasks := taskqueuev1.NewTaskServiceClient(conns[0])
	// Open loop: each tick enqueues whatever the rate owes since the start,
	// so that a slow call is caught up with rather than lowering the rate.
	start, enqueued := time.Now(), 0
	every(queueLatencyEnqueueTick, 0, func() error {
		owed := min(int(time.Since(start).Seconds()*queueLatencyRate)-enqueued, 1000)
		if owed <= 0 {
			return nil
		}
		req := &taskqueuev1.EnqueueTasksRequest{}
		for j := range owed {
			req.Tasks = append(req.Tasks, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: fmt.Sprintf("%s-%d", keyPrefix, enqueued+j), TaskType: "bench"})
		}
		if _, err := tasks.EnqueueTasks(ctx, req); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		enqueued += owed
		return nil
	}, func() { res.enqueued = enqueued })
	for w, s := range sessions {
		tasks := taskqueuev1.NewTaskServiceClient(conns[(w+1)%len(conns)])
		var myClaims, myCompletes []time.Duration
		n := 0
		every(queueLatencyPollTick, queueLatencyPollTick*time.Duration(w)/time.Duration(len(sessions)), func() error {
			start := time.Now()
			resp, err := tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{SessionId: s.id, SessionToken: s.token, MaxTasks: queueLatencyClaimMax})
			myClaims = append(myClaims, time.Since(start))
			if err != nil {
				return fmt.Errorf("claim: %w", err)
			}
			if len(resp.GetClaims()) == 0 {
				return nil
			}
			// The claimed batch is settled in one call, as a worker would.
			req := &taskqueuev1.CompleteTasksRequest{SessionId: s.id, SessionToken: s.token}
			for _, c := range resp.GetClaims() {
				req.Claims = append(req.Claims, &taskqueuev1.CompletedClaim{TaskId: c.GetTask().GetTaskId(), ClaimToken: c.GetClaimToken()})
			}
			start = time.Now()
			if _, err := tasks.CompleteTasks(ctx, req); err != nil {
				return fmt.Errorf("complete: %w", err)
			}
			myCompletes = append(myCompletes, time.Since(start))
			n += len(resp.GetClaims())
			return nil
		}, func() {
			res.claims, res.completes, res.claimed = append(res.claims, myClaims...), append(res.completes, myCompletes...), res.claimed+n
		})
	}
	for p := range queueLatencyHealthProbe {
		probe := healthpb.NewHealthClient(conns[p%len(conns)])
		var mine []time.Duration
		every(queueLatencyPollTick, queueLatencyPollTick*time.Duration(p)/queueLatencyHealthProbe, func() error {
			start := time.Now()
			_, err := probe.Check(ctx, &healthpb.HealthCheckRequest{})
			mine = append(mine, time.Since(start))
			return err
		}, func() { res.health = append(res.health, mine...) })
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return res
}

// queueBenchPercentiles reports p50 and p99 of lat in milliseconds.
func queueBenchPercentiles(b *testing.B, name string, lat []time.Duration) {
	if len(lat) == 0 {
		b.Fatalf("no %s latencies measured", name)
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), name+"-p50-ms")
	b.ReportMetric(at(0.99), name+"-p99-ms")
}

// queueBenchCPU is the CPU time this process has used, user and system.
func queueBenchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
