//go:build unix

// bench_test.go holds the coordinator's benchmarks and their harness (some 740
// lines): starting clusters, dialling every node, driving rounds of calls
// from many workers and reporting latency percentiles and CPU per call. The
// harness serves only these benchmarks, so it stays beside them.

package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// Benchmarks of the coordinator on real in-process clusters: Raft over
// loopback TCP with bolt logs on disk, gRPC on loopback. The load generator
// and every node share one process and its CPUs, so a figure means most as a
// ratio to a bare gRPC round trip measured in the same run: the unary
// benchmarks interleave rounds of health checks with their own rounds and
// report both, and BenchmarkBaselineUnaryPing measures the health check
// alone.
//
// Every benchmark's op is a fixed batch of work (a round of calls, a round of
// heartbeats, a batch of registrations), so that -benchtime 1x is a
// meaningful measurement and a longer benchtime repeats the batch. Each
// benchmark reports its throughput and latency percentiles with
// b.ReportMetric, with cpu-cores: the process's CPU time over the measured
// wall time, which says whether the machine was saturated. ns/op and
// allocs/op are per batch and cover the whole process, client included.
//
// The file builds on Unix only, for getrusage.

const (
	// benchClients is how many clients the unary benchmarks run at once, each
	// on its own connection.
	benchClients = 64
	// benchCallsPerOp is how many unary calls make one op of the unary
	// benchmarks, spread over the clients as each becomes free.
	benchCallsPerOp = 2048
	// benchSessions is how many sessions the heartbeat and memory benchmarks
	// register.
	benchSessions = 10_000
	// benchConnsPerNode is how many client connections per node carry the
	// heartbeat streams.
	benchConnsPerNode = 2
	// benchHeartbeatRaftHeartbeat and benchHeartbeatRaftElection are the
	// Raft timeouts of the heartbeat benchmark's cluster: the seeds' (and
	// the defaults), as in every other benchmark.
	benchHeartbeatRaftHeartbeat = 150 * time.Millisecond
	benchHeartbeatRaftElection  = 300 * time.Millisecond
	// benchWarmUpRate paces the first beats of the heartbeat benchmark.
	benchWarmUpRate = 2_000
	// benchRoundTimeout bounds any one batch: a stuck benchmark fails.
	benchRoundTimeout = time.Minute
)

// benchUnaryOptions keeps every session live for the whole run without
// heartbeats: the unary benchmarks measure writes, not liveness, and a session
// turning suspect half-way would change what is measured.
var benchUnaryOptions = coordtest.Options{Quiet: true, LeaseTimeout: time.Hour, HeartbeatInterval: 10 * time.Second}

// benchNames makes session names unique across the benchmarks of one run.
var benchNames atomic.Int64

func benchName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, benchNames.Add(1))
}

// BenchmarkBaselineUnaryPing is the yardstick for the unary benchmarks: a
// gRPC health check against the leader, through the same server interceptors,
// by the same 64 clients on their own connections. It touches neither Raft
// nor the state store. One op is 2048 checks.
func BenchmarkBaselineUnaryPing(b *testing.B) {
	c := benchStart(b, 3, benchUnaryOptions)
	conns := benchDialEach(b, c.AdminToken, benchAddrs(c.Leader()))
	benchUnary(b, c, conns, false, benchPing(conns))
}

// BenchmarkRegisterSession registers sessions from 64 concurrent clients, on
// the leader and spread over all three nodes (two thirds then forwarded by a
// follower). Each registration is one Raft entry. One op is 2048
// registrations, after 2048 health checks over the same connections.
func BenchmarkRegisterSession(b *testing.B) {
	c := benchStart(b, 3, benchUnaryOptions)
	for _, via := range benchVias(c) {
		b.Run("via="+via.name, func(b *testing.B) {
			conns := benchDialEach(b, c.AdminToken, via.addrs)
			benchUnary(b, c, conns, true, func(ctx context.Context, w int, lat *[]time.Duration) error {
				start := time.Now()
				_, err := coordinatorv1.NewSessionServiceClient(conns[w]).RegisterSession(ctx, benchRegisterRequest(benchName("reg")))
				*lat = append(*lat, time.Since(start))
				return err
			})
		})
	}
}

// BenchmarkAcquireRelease has 64 concurrent clients, each with its own
// session and lock key, acquire and release their lock: two Raft entries per
// cycle. ops/s and the percentiles count acquires and releases alike, so that
// they compare with one bare round trip; cycles/s is the pairs. One op is
// 2048 cycles, after 2048 health checks over the same connections.
func BenchmarkAcquireRelease(b *testing.B) {
	c := benchStart(b, 3, benchUnaryOptions)
	for _, via := range benchVias(c) {
		b.Run("via="+via.name, func(b *testing.B) {
			conns := benchDialEach(b, c.AdminToken, via.addrs)
			sessions := benchRegisterSessions(b, conns, len(conns), "lock")
			measured := benchUnary(b, c, conns, true, func(ctx context.Context, w int, lat *[]time.Duration) error {
				locks := coordinatorv1.NewLockServiceClient(conns[w])
				s := sessions[w]
				key := fmt.Sprintf("bench/lock-%d", w)
				start := time.Now()
				acq, err := locks.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{
					Key: key, SessionId: s.id, SessionToken: s.token, Ttl: durationpb.New(time.Minute),
				})
				*lat = append(*lat, time.Since(start))
				if err != nil {
					return fmt.Errorf("acquire: %w", err)
				}
				start = time.Now()
				_, err = locks.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{
					Key: key, SessionId: s.id, SessionToken: s.token, FencingToken: acq.GetLock().GetFencingToken(),
				})
				*lat = append(*lat, time.Since(start))
				if err != nil {
					return fmt.Errorf("release: %w", err)
				}
				return nil
			})
			b.ReportMetric(float64(measured.calls)/measured.elapsed.Seconds(), "cycles/s")
		})
	}
}

// BenchmarkMemoryPerSession measures the coordinator's live heap per 1,000
// registered sessions (state store, its event history, the leader's leases)
// on a one-node cluster: nodes in one process share one heap, so three would
// triple the figure. Sessions do not heartbeat here. One op registers 10,000
// sessions.
func BenchmarkMemoryPerSession(b *testing.B) {
	opts := benchUnaryOptions
	// No snapshot may be in flight when the heap is read. The log itself is
	// in bolt's memory map, outside the Go heap, either way.
	opts.SnapshotThreshold = 1 << 30
	c := benchStart(b, 1, opts)
	conns := benchDialEach(b, c.AdminToken, benchAddrs(c.Leader()))
	benchRegisterSessions(b, conns, len(conns), "warm") // connections and buffers up

	before := benchHeap()
	registered := 0
	cpu := benchCPU()
	for b.Loop() {
		benchRegisterSessions(b, conns, benchSessions, "mem")
		registered += benchSessions
	}
	cores := (benchCPU() - cpu).Seconds() / b.Elapsed().Seconds()
	after := benchHeap()
	per := func(v uint64, w uint64) float64 { return (float64(v) - float64(w)) / float64(registered) * 1000 }
	b.ReportMetric(per(after.HeapAlloc, before.HeapAlloc), "bytes/1000-sessions")
	b.ReportMetric(per(after.HeapObjects, before.HeapObjects), "objects/1000-sessions")
	b.ReportMetric(float64(registered)/b.Elapsed().Seconds(), "registrations/s")
	b.ReportMetric(cores, "cpu-cores")
}

// benchStart starts a cluster for a benchmark. Should stopping it at the end
// hang, which a Raft replication pipeline stuck after a leader change does
// (see docs/BENCHMARKS.md), the run fails after a minute with the stuck
// goroutines counted, rather than waiting for the test timeout.
func benchStart(b *testing.B, nodes int, opts coordtest.Options) *coordtest.Cluster {
	b.Helper()
	// GAIA_BENCH_LOG_ENCODING=json measures the log encoding coordinators
	// wrote before protobuf, for a same-binary comparison.
	opts.LogEncoding = os.Getenv("GAIA_BENCH_LOG_ENCODING")
	var watchdog *time.Timer
	b.Cleanup(func() { // runs after the cluster has stopped
		if watchdog != nil {
			watchdog.Stop()
		}
	})
	c := coordtest.Start(b, nodes, opts)
	b.Cleanup(func() { // runs before the cluster stops
		watchdog = time.AfterFunc(time.Minute, func() {
			buf := make([]byte, 64<<20)
			buf = buf[:runtime.Stack(buf, true)]
			panic(fmt.Sprintf("%s: the coordinators did not stop within a minute; %d Raft pipeline sends are blocked in netPipeline.AppendEntries (hashicorp/raft pipeline deadlock after a leader change); last failure: %v",
				b.Name(), bytes.Count(buf, []byte("(*netPipeline).AppendEntries")), benchFailure.Load()))
		})
	})
	return c
}

// benchFailure is the latest benchmark failure, for the shutdown watchdog to
// repeat: the benchmark's own log is lost when the watchdog ends the run.
var benchFailure atomic.Value

func benchFatalf(b *testing.B, format string, args ...any) {
	b.Helper()
	msg := fmt.Sprintf(format, args...)
	benchFailure.Store(b.Name() + ": " + msg)
	b.Fatal(msg)
}

// benchTerm is the highest Raft term among the running nodes: it goes up by
// one or more with every election.
func benchTerm(c *coordtest.Cluster) uint64 {
	var term uint64
	for _, n := range c.Nodes {
		if r := n.Raft(); r != nil {
			term = max(term, r.CurrentTerm())
		}
	}
	return term
}

// benchElectionNote explains a failure that came with an election.
func benchElectionNote(c *coordtest.Cluster, since uint64) string {
	if now := benchTerm(c); now != since {
		return fmt.Sprintf(" (Raft term went from %d to %d: the leader changed under the load)", since, now)
	}
	return ""
}

// BenchmarkHeartbeats holds 10,000 sessions with a heartbeat stream each,
// spread over the three nodes (a follower relays its streams' beats to the
// leader), and measures acknowledged beats per second and the send→ack
// latency of each beat. Beats are offered open-loop at a fixed rate: each
// session beats once per round and the round's beats are spread evenly over
// 10,000/rate seconds, as sessions beating on their own timers would be.
// rate=max sends every session's beat at once, which measures capacity; its
// latency is mostly queueing. One op is one round: 10,000 beats.
//
// A beat that fails (the leader lost its lease and the stream ended) counts
// in failed-beats, not in the latencies, and its stream is opened again for
// the next round; elections counts the Raft terms (elections) begun during
// the measurement, setup-elections those of the setup.
func BenchmarkHeartbeats(b *testing.B) {
	// The production session lease and interval (config.go), so that the
	// leader's lease sweep runs at its real pace, and the seeds' Raft
	// timings (150/300 ms): the leader must keep its lease through the
	// registration flood of the setup and the beats (issue 15).
	c := benchStart(b, 3, coordtest.Options{
		Quiet: true, LeaseTimeout: 30 * time.Second, HeartbeatInterval: 10 * time.Second,
		HeartbeatTimeout: benchHeartbeatRaftHeartbeat, ElectionTimeout: benchHeartbeatRaftElection,
	})
	setupTerm := benchTerm(c)
	leader := c.Leader()
	regConns := benchDialEach(b, c.AdminToken, benchAddrs(leader))
	sessions := benchRegisterSessions(b, regConns, benchSessions, "hb")
	hb := benchOpenHeartbeats(b, c, sessions)

	// A registered session's first beat commits its move to active through
	// Raft; later beats touch only the leader's memory. Measure the latter.
	// A beat cut by an election leaves its session registered: the warm-up
	// goes on (up to 10 rounds) until a round has no failure and every
	// session is active, so that an election is counted, not fatal.
	t0 := time.Now()
	for round, settled := 1, false; round <= 2 || !settled; round++ {
		if round > 10 {
			benchFatalf(b, "warm-up: sessions still registered or beats failing after 10 rounds%s", benchElectionNote(c, setupTerm))
		}
		_, failed, _ := hb.round(b, c, benchWarmUpRate)
		settled = benchWaitNoneRegistered(b, regConns[0]) && failed == 0
	}
	setupElections := benchTerm(c) - setupTerm
	b.Logf("setup: %d sessions registered and beating, warm-up took %s, %d elections during setup", len(sessions), time.Since(t0).Round(time.Millisecond), setupElections)

	for _, rate := range []int{10_000, 25_000, 50_000, 0} {
		name := "rate=max"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		b.Run(name, func(b *testing.B) {
			var lat []time.Duration
			failed := 0
			var firstErr error
			term, reopened, cpu := benchTerm(c), hb.reopened.Load(), benchCPU()
			for b.Loop() {
				acked, f, err := hb.round(b, c, rate)
				lat, failed = append(lat, acked...), failed+f
				if firstErr == nil {
					firstErr = err
				}
			}
			benchReport(b, "", "beats/s", lat, b.Elapsed(), benchCPU()-cpu)
			elections := benchTerm(c) - term
			b.ReportMetric(float64(elections), "elections")
			// The setup's registrations, first beats and warm-up rounds,
			// repeated on every line so that no line hides them.
			b.ReportMetric(float64(setupElections), "setup-elections")
			b.ReportMetric(float64(failed), "failed-beats")
			b.ReportMetric(float64(hb.reopened.Load()-reopened), "reopened-streams")
			if failed > 0 {
				b.Logf("%d beats failed, %d elections; first failure: %v", failed, elections, firstErr)
			}
		})
	}
}

// benchHeap reads the heap after collecting everything collectable.
func benchHeap() runtime.MemStats {
	runtime.GC()
	runtime.GC() // a second cycle empties sync.Pools the first only moved aside
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// benchVia is a set of nodes the clients of a unary benchmark talk to.
type benchVia struct {
	name  string
	addrs []string // one per client
}

// benchVias are the leader alone, and all three nodes with the clients spread
// evenly over them.
func benchVias(c *coordtest.Cluster) []benchVia {
	all := make([]string, benchClients)
	for i := range all {
		all[i] = c.Nodes[i%len(c.Nodes)].GRPCAddr
	}
	return []benchVia{{name: "leader", addrs: benchAddrs(c.Leader())}, {name: "all-nodes", addrs: all}}
}

// benchAddrs is one address per client, all of node n.
func benchAddrs(n *coordtest.Node) []string {
	out := make([]string, benchClients)
	for i := range out {
		out[i] = n.GRPCAddr
	}
	return out
}

// benchDialEach opens one connection per address, plain gRPC with no retry or
// balancing, so that the baseline and the measured calls travel alike. They
// close in Cleanup.
func benchDialEach(b *testing.B, token string, addrs []string) []*grpc.ClientConn {
	b.Helper()
	conns := make([]*grpc.ClientConn, len(addrs))
	for i, a := range addrs {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()), grpcclient.WithBearer(token))
		if err != nil {
			benchFatalf(b, "%v", err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		conns[i] = conn
	}
	return conns
}

// benchCall makes one call (or a few) for worker w and appends the latency
// of each RPC it made to lat.
type benchCall func(ctx context.Context, w int, lat *[]time.Duration) error

// benchPing is the yardstick call: a gRPC health check, answered by the node
// itself through the same interceptors as every coordinator RPC, touching
// neither Raft nor the state store.
func benchPing(conns []*grpc.ClientConn) benchCall {
	return func(ctx context.Context, w int, lat *[]time.Duration) error {
		start := time.Now()
		_, err := healthpb.NewHealthClient(conns[w]).Check(ctx, &healthpb.HealthCheckRequest{})
		*lat = append(*lat, time.Since(start))
		return err
	}
}

// benchRounds runs rounds of calls, one goroutine per connection taking the
// next call as soon as it is free, and keeps their latencies and timing.
type benchRounds struct {
	call    benchCall
	workers int
	lats    [][]time.Duration
	calls   int
	elapsed time.Duration
	cpu     time.Duration
}

func newBenchRounds(call benchCall, workers int) *benchRounds {
	return &benchRounds{call: call, workers: workers, lats: make([][]time.Duration, workers)}
}

func (r *benchRounds) run(calls int) error {
	ctx, cancel := context.WithTimeout(context.Background(), benchRoundTimeout)
	defer cancel()
	start, cpu := time.Now(), benchCPU()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, r.workers)
	for w := range r.workers {
		wg.Go(func() {
			for next.Add(1) <= int64(calls) {
				if err := r.call(ctx, w, &r.lats[w]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	r.elapsed += time.Since(start)
	r.cpu += benchCPU() - cpu
	r.calls += calls
	return errors.Join(errs...)
}

// reset forgets what was measured so far.
func (r *benchRounds) reset() {
	for w := range r.lats {
		r.lats[w] = r.lats[w][:0]
	}
	r.calls, r.elapsed, r.cpu = 0, 0, 0
}

// report reports ops per second, the latency percentiles and the cores used,
// each metric's unit prefixed with prefix, and returns the ops per second.
func (r *benchRounds) report(b *testing.B, prefix string) float64 {
	b.Helper()
	return benchReport(b, prefix, "ops/s", slices.Concat(r.lats...), r.elapsed, r.cpu)
}

// benchUnary measures op after op of benchCallsPerOp calls of do over conns.
// With ping, each op also runs as many health checks over the same
// connections just before, and reports them as ping-ops/s, ping-p50-ms and
// ping-p99-ms, and their ratio as ping-ops-per-op: how many bare round trips
// the clients made in the time of one RPC of do, in the same run. The first
// call per connection, unmeasured, opens the connections. It returns the
// measured rounds.
func benchUnary(b *testing.B, c *coordtest.Cluster, conns []*grpc.ClientConn, ping bool, do benchCall) *benchRounds {
	b.Helper()
	measured := newBenchRounds(do, len(conns))
	pings := newBenchRounds(benchPing(conns), len(conns))
	if err := measured.run(len(conns)); err != nil {
		benchFatalf(b, "warm-up: %v", err)
	}
	if err := pings.run(len(conns)); err != nil {
		benchFatalf(b, "warm-up: %v", err)
	}
	measured.reset()
	pings.reset()

	term := benchTerm(c)
	for b.Loop() {
		if ping {
			if err := pings.run(benchCallsPerOp); err != nil {
				benchFatalf(b, "ping: %v", err)
			}
		}
		if err := measured.run(benchCallsPerOp); err != nil {
			benchFatalf(b, "%v%s", err, benchElectionNote(c, term))
		}
	}
	rpcs := measured.report(b, "")
	if ping {
		pingRPCs := pings.report(b, "ping-")
		b.ReportMetric(pingRPCs/rpcs, "ping-ops-per-op")
	}
	b.ReportMetric(float64(benchTerm(c)-term), "elections")
	return measured
}

// benchReport reports ops per second over elapsed (in unit), the latency
// percentiles and the CPU cores the process used, on average, over elapsed,
// each metric's unit prefixed with prefix. It returns the ops per second.
func benchReport(b *testing.B, prefix, unit string, lat []time.Duration, elapsed, cpu time.Duration) float64 {
	b.Helper()
	if len(lat) == 0 {
		benchFatalf(b, "no latencies recorded")
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	perSecond := float64(len(lat)) / elapsed.Seconds()
	b.ReportMetric(perSecond, prefix+unit)
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), prefix+"cpu-cores")
	return perSecond
}

// benchCPU is the CPU time, user and system, the process has used so far.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchSession struct{ id, token string }

func benchRegisterRequest(name string) *coordinatorv1.RegisterSessionRequest {
	return &coordinatorv1.RegisterSessionRequest{
		Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: 2,
	}
}

// benchRegisterSessions registers n sessions over conns, one goroutine per
// connection, as fast as the cluster takes them. It is setup, not
// measurement: like the Go client, it retries a call that found no leader.
func benchRegisterSessions(b *testing.B, conns []*grpc.ClientConn, n int, prefix string) []benchSession {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchRoundTimeout)
	defer cancel()
	out := make([]benchSession, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for w, conn := range conns {
		wg.Go(func() {
			sessions := coordinatorv1.NewSessionServiceClient(conn)
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				resp, err := sessions.RegisterSession(ctx, benchRegisterRequest(benchName(prefix)))
				for status.Code(err) == codes.Unavailable && ctx.Err() == nil {
					// Under a new name: a call cut by a leader change may
					// have committed all the same, and then the old name is
					// taken by a session whose token never came back.
					time.Sleep(20 * time.Millisecond)
					resp, err = sessions.RegisterSession(ctx, benchRegisterRequest(benchName(prefix)))
				}
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = benchSession{resp.GetSession().GetSessionId(), resp.GetSessionToken()}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		benchFatalf(b, "register %d sessions: %v", n, err)
	}
	return out
}

// benchWaitNoneRegistered waits up to 10 s until no session is still
// registered, that is every session's move to active is committed, and
// reports whether that happened. It retries a node that has no leader.
func benchWaitNoneRegistered(b *testing.B, conn *grpc.ClientConn) bool {
	b.Helper()
	sessions := coordinatorv1.NewSessionServiceClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := sessions.ListSessions(ctx, &coordinatorv1.ListSessionsRequest{
			Statuses: []coordinatorv1.SessionStatus{coordinatorv1.SessionStatus_SESSION_STATUS_REGISTERED}, PageSize: 1,
		})
		cancel()
		if err != nil && status.Code(err) != codes.Unavailable {
			benchFatalf(b, "%v", err)
		}
		if err == nil && len(resp.GetSessions()) == 0 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// benchHeartbeats drives one heartbeat stream per session. A receiver
// goroutine per stream times each acknowledgement against its beat's send;
// a round sends one beat on every stream and waits for every beat to be
// acknowledged or to fail. A stream that ends is opened again for the next
// beat, as the Go client's heartbeater would, and counted.
type benchHeartbeats struct {
	streams   []*benchStream
	clients   []coordinatorv1.SessionServiceClient
	ctx       context.Context
	epoch     time.Time
	current   atomic.Pointer[benchRound]
	receivers sync.WaitGroup
	reopened  atomic.Int64
}

type benchStream struct {
	index  int
	client coordinatorv1.SessionServiceClient
	beat   *coordinatorv1.HeartbeatRequest
	// stream is used by one sender at a time, and replaced by it once dead.
	stream coordinatorv1.SessionService_HeartbeatClient
	// sentAt is when the beat in flight was sent, in nanoseconds since the
	// epoch, or 0 with none in flight. Whoever swaps it back to 0 (the
	// receiver on its ack or on the stream's end, the sender on a failed
	// send) finishes the beat.
	sentAt atomic.Int64
	dead   atomic.Bool
}

type benchRound struct {
	latency []time.Duration // by stream index; -1 for a beat that failed
	pending sync.WaitGroup
	failed  atomic.Int64
	mu      sync.Mutex
	err     error // the first failure
}

func (r *benchRound) fail(s *benchStream, err error) {
	r.latency[s.index] = -1
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = fmt.Errorf("stream %d: %w", s.index, err)
	}
	r.pending.Done()
}

var errBenchStreamEnded = errors.New("heartbeat stream ended")

// benchOpenHeartbeats opens a stream per session, session i on node i mod 3,
// over benchConnsPerNode connections per node. The streams end in Cleanup.
func benchOpenHeartbeats(b *testing.B, c *coordtest.Cluster, sessions []benchSession) *benchHeartbeats {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &benchHeartbeats{ctx: ctx, epoch: time.Now()}
	for range benchConnsPerNode {
		for _, n := range c.Nodes {
			h.clients = append(h.clients, c.Client(n).Sessions())
		}
	}
	b.Cleanup(func() {
		cancel()
		h.receivers.Wait()
	})
	for i, s := range sessions {
		bs := &benchStream{index: i, client: h.clients[i%len(h.clients)], beat: &coordinatorv1.HeartbeatRequest{SessionId: s.id, SessionToken: s.token, Activity: "benchmark"}}
		if err := h.open(bs); err != nil {
			benchFatalf(b, "open heartbeat stream %d: %v", i, err)
		}
		h.streams = append(h.streams, bs)
	}
	return h
}

// open starts a stream and its receiver.
func (h *benchHeartbeats) open(s *benchStream) error {
	stream, err := s.client.Heartbeat(h.ctx)
	if err != nil {
		return err
	}
	s.stream = stream
	s.dead.Store(false)
	h.receivers.Go(func() { h.receive(s, stream) })
	return nil
}

func (h *benchHeartbeats) now() int64 { return int64(time.Since(h.epoch)) + 1 }

func (h *benchHeartbeats) receive(s *benchStream, stream coordinatorv1.SessionService_HeartbeatClient) {
	for {
		_, err := stream.Recv()
		r := h.current.Load()
		if err != nil {
			s.dead.Store(true)
			if s.sentAt.Swap(0) != 0 {
				r.fail(s, err)
			}
			return
		}
		if at := s.sentAt.Swap(0); at != 0 {
			r.latency[s.index] = time.Duration(h.now() - at)
			r.pending.Done()
		}
	}
}

// round sends one beat on every stream, spread evenly over len/rate seconds
// (all at once when rate is 0), waits for every beat to be answered and
// returns the latencies of those acknowledged and how many failed. The
// senders sleep only when at least a millisecond ahead, so beats leave in
// bursts of at most a millisecond's worth.
func (h *benchHeartbeats) round(b *testing.B, c *coordtest.Cluster, rate int) (acked []time.Duration, failed int, firstErr error) {
	b.Helper()
	r := &benchRound{latency: make([]time.Duration, len(h.streams))}
	r.pending.Add(len(h.streams))
	h.current.Store(r)
	term := benchTerm(c)
	start := time.Now()
	senders := 2 * runtime.GOMAXPROCS(0)
	var sending sync.WaitGroup
	for j := range senders {
		sending.Go(func() {
			for i := j; i < len(h.streams); i += senders {
				if rate > 0 {
					due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
					if d := time.Until(due); d >= time.Millisecond {
						time.Sleep(d)
					}
				}
				h.send(r, h.streams[i])
			}
		})
	}
	done := make(chan struct{})
	go func() {
		// Every sender must be done with its streams before the next round
		// sends on them again.
		r.pending.Wait()
		sending.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(benchRoundTimeout):
		benchFatalf(b, "heartbeat round unanswered after %s%s", benchRoundTimeout, benchElectionNote(c, term))
	}
	for _, d := range r.latency {
		if d >= 0 {
			acked = append(acked, d)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return acked, int(r.failed.Load()), r.err
}

func (h *benchHeartbeats) send(r *benchRound, s *benchStream) {
	if s.dead.Load() {
		h.reopened.Add(1)
		if err := h.open(s); err != nil {
			r.fail(s, err)
			return
		}
	}
	s.sentAt.Store(h.now())
	err := s.stream.Send(s.beat)
	// A receiver that saw the stream end before this beat was in flight
	// left the beat to the sender.
	if err == nil && s.dead.Load() {
		err = errBenchStreamEnded
	}
	if err != nil && s.sentAt.Swap(0) != 0 {
		r.fail(s, err)
	}
}
