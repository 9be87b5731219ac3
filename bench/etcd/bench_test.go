//go:build unix

// bench_test.go is the whole comparison, some 650 lines, in one file on
// purpose: the etcd and GAIA clusters, their workloads and the one harness
// that drives both (measure, measureBeats, report) are read side by side, so
// that each workload is seen to do the same work on both systems.

package etcdbench

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// BenchmarkVersusEtcd runs each workload against etcd and then against GAIA's
// coordinator, both three-node clusters started once in this process, with
// their data folders in the same temporary directory (so on the same disk),
// driven by the same code:
//
//   - put: 64 clients, each on its own connection to the leader, make
//     2,048 writes per op: etcd Put of a 256-byte value to a key of its own,
//     GAIA RegisterSession. Each is one Raft entry.
//   - mutex: the same 64 clients each hold a session and a key of their own
//     and run 2,048 acquire+release cycles per op: etcd's
//     clientv3/concurrency Mutex Lock+Unlock (a Txn and a Delete), GAIA's
//     AcquireLock+ReleaseLock. Each is two Raft entries.
//   - keepalive: -streams leases (etcd) or sessions (GAIA), each with a
//     stream of its own, spread over the three nodes on two connections per
//     node; a follower passes its streams' beats on to the leader. One op is
//     a round in which every stream sends one keep-alive (etcd
//     LeaseKeepAlive) or heartbeat (GAIA Heartbeat) at once and waits for its
//     answer: capacity, as the coordinator's own rate=max does.
//
// Each sub-benchmark reports ops/s, p50-ms and p99-ms of one call (one
// cycle for mutex, one beat for keepalive), cpu-cores (the process's CPU time
// over wall time: both clusters and the load generator share it), and
// elections (Raft term changes during the measurement). `make bench-etcd`
// prints the GAIA/etcd ratios from them.
//
// GAIA's Raft waits 500 ms for a leader's heartbeat and 1 s in an election
// (-gaia-raft-heartbeat, -gaia-raft-election; the coordinator's own heartbeat
// benchmark uses the same, the seeds 150/300 ms), etcd its defaults (a
// heartbeat every 100 ms, an election after 1 s without one). On a loaded
// two-core machine GAIA's cluster with the seeds' timings keeps losing its
// leader (docs/BENCHMARKS.md), which measures that rather than throughput. GAIA's Raft port is mutual TLS and its
// clients present a bearer token, as in production; etcd runs without TLS or
// auth, as its own benchmark tool is usually run.
func BenchmarkVersusEtcd(b *testing.B) {
	e := startEtcd(b)
	g := startGAIA(b)
	for _, w := range []struct {
		name string
		etcd func(b *testing.B, e *etcdCluster)
		gaia func(b *testing.B, g *gaiaCluster)
	}{
		{"put", etcdPut, gaiaRegister},
		{"mutex", etcdMutex, gaiaLock},
		{"keepalive", etcdKeepAlive, gaiaHeartbeat},
	} {
		b.Run(w.name+"/system=etcd", func(b *testing.B) { w.etcd(b, e) })
		b.Run(w.name+"/system=gaia", func(b *testing.B) { w.gaia(b, g) })
	}
}

var (
	benchStreams       = flag.Int("streams", 10_000, "keep-alive streams (one lease or session each)")
	gaiaRaftHeartbeat  = flag.Duration("gaia-raft-heartbeat", 500*time.Millisecond, "GAIA's Raft heartbeat timeout")
	gaiaRaftElection   = flag.Duration("gaia-raft-election", time.Second, "GAIA's Raft election timeout")
	gaiaLogEncoding    = flag.String("gaia-log-encoding", "", "GAIA's Raft log encoding (RAFT_LOG_ENCODING: protobuf or json; default the coordinator's)")
	etcdHeartbeatMs    = flag.Uint("etcd-heartbeat-ms", 100, "etcd's --heartbeat-interval")
	etcdElectionMs     = flag.Uint("etcd-election-ms", 1000, "etcd's --election-timeout")
	benchValueBytes    = flag.Int("value-bytes", 256, "etcd put value size")
	benchRoundDeadline = flag.Duration("round-timeout", 2*time.Minute, "fail a round that takes longer")
)

const (
	// benchClients is how many clients the unary workloads run at once, each
	// on its own connection to the leader (the coordinator's own unary
	// benchmarks use the same).
	benchClients = 64
	// benchCallsPerOp is how many calls or cycles make one op.
	benchCallsPerOp = 2048
	// benchConnsPerNode is how many connections per node carry the
	// keep-alive streams.
	benchConnsPerNode = 2
)

// --- etcd ---

type etcdCluster struct {
	members []*embed.Etcd
	urls    []string // client URL by member
}

func startEtcd(b *testing.B) *etcdCluster {
	b.Helper()
	dir := b.TempDir()
	const n = 3
	peers, clients := make([]url.URL, n), make([]url.URL, n)
	var initial []string
	for i := range n {
		peers[i] = url.URL{Scheme: "http", Host: freeAddr(b)}
		clients[i] = url.URL{Scheme: "http", Host: freeAddr(b)}
		initial = append(initial, fmt.Sprintf("etcd-%d=%s", i+1, peers[i].String()))
	}
	e := &etcdCluster{}
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("etcd-%d", i+1)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peers[i]}, []url.URL{peers[i]}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clients[i]}, []url.URL{clients[i]}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "gaia-bench"
		cfg.ClusterState = embed.ClusterStateFlagNew
		cfg.TickMs = *etcdHeartbeatMs
		cfg.ElectionMs = *etcdElectionMs
		cfg.LogLevel = "error"
		m, err := embed.StartEtcd(cfg)
		if err != nil {
			b.Fatalf("start %s: %v", cfg.Name, err)
		}
		e.members = append(e.members, m)
		e.urls = append(e.urls, clients[i].String())
	}
	b.Cleanup(func() {
		for _, m := range e.members {
			m.Close()
		}
	})
	for _, m := range e.members {
		select {
		case <-m.Server.ReadyNotify():
		case err := <-m.Err():
			b.Fatalf("etcd: %v", err)
		case <-time.After(time.Minute):
			b.Fatal("etcd not ready after a minute")
		}
	}
	e.leader(b)
	return e
}

// leader waits for a leader and returns its index.
func (e *etcdCluster) leader(b *testing.B) int {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range e.members {
			if m.Server.Leader() == m.Server.MemberID() {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("etcd elected no leader in 30 s")
	return -1
}

func (e *etcdCluster) term() uint64 {
	var t uint64
	for _, m := range e.members {
		t = max(t, m.Server.Term())
	}
	return t
}

// clients opens one client (so one connection) per URL; they close in Cleanup.
func (e *etcdCluster) clients(b *testing.B, urls []string) []*clientv3.Client {
	b.Helper()
	out := make([]*clientv3.Client, len(urls))
	for i, u := range urls {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{u}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cli.Close() })
		out[i] = cli
	}
	return out
}

func etcdPut(b *testing.B, e *etcdCluster) {
	clients := e.clients(b, repeat(e.urls[e.leader(b)], benchClients))
	value := strings.Repeat("v", *benchValueBytes)
	var n atomic.Int64
	measure(b, e.term, len(clients), func(ctx context.Context, w int) error {
		key := fmt.Sprintf("bench/put/%d", n.Add(1))
		_, err := retry(ctx, func() error {
			_, err := clients[w].Put(ctx, key, value)
			return err
		})
		return err
	})
}

func etcdMutex(b *testing.B, e *etcdCluster) {
	clients := e.clients(b, repeat(e.urls[e.leader(b)], benchClients))
	mutexes := make([]*concurrency.Mutex, len(clients))
	for w, cli := range clients {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(600))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		mutexes[w] = concurrency.NewMutex(s, fmt.Sprintf("bench/lock-%d", w))
	}
	measure(b, e.term, len(clients), func(ctx context.Context, w int) error {
		if _, err := retry(ctx, func() error { return mutexes[w].Lock(ctx) }); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := retry(ctx, func() error { return mutexes[w].Unlock(ctx) }); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		return nil
	})
}

func etcdKeepAlive(b *testing.B, e *etcdCluster) {
	granters := e.clients(b, repeat(e.urls[e.leader(b)], benchClients))
	ids := make([]clientv3.LeaseID, *benchStreams)
	parallel(b, len(ids), len(granters), func(ctx context.Context, w, i int) error {
		_, err := retry(ctx, func() error {
			resp, err := granters[w].Grant(ctx, 600)
			if err == nil {
				ids[i] = resp.ID
			}
			return err
		})
		return err
	})
	var conns []*clientv3.Client
	for range benchConnsPerNode {
		conns = append(conns, e.clients(b, e.urls)...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	streams := make([]beater, len(ids))
	for i, id := range ids {
		leases := pb.NewLeaseClient(conns[i%len(conns)].ActiveConnection())
		req := &pb.LeaseKeepAliveRequest{ID: int64(id)}
		streams[i] = reopening(ctx, func() (beater, error) {
			stream, err := leases.LeaseKeepAlive(ctx)
			if err != nil {
				return nil, err
			}
			return func() error {
				if err := stream.Send(req); err != nil {
					_, err = stream.Recv() // the stream's own error
					return cmp.Or(err, io.ErrUnexpectedEOF)
				}
				resp, err := stream.Recv()
				if err == nil && resp.TTL <= 0 {
					err = fmt.Errorf("lease %x not found", id)
				}
				return err
			}, nil
		})
	}
	measureBeats(b, e.term, streams)
}

// --- GAIA ---

type gaiaCluster struct {
	c *coordtest.Cluster
}

func startGAIA(b *testing.B) *gaiaCluster {
	b.Helper()
	// Sessions live for the whole run without heartbeats in the unary
	// workloads; the keep-alive workload beats far more often than this.
	c := coordtest.Start(b, 3, coordtest.Options{
		Quiet: true, LeaseTimeout: 10 * time.Minute, HeartbeatInterval: 10 * time.Second,
		HeartbeatTimeout: *gaiaRaftHeartbeat, ElectionTimeout: *gaiaRaftElection,
		LogEncoding:     *gaiaLogEncoding,
		MaxLiveSessions: 1 << 20, // etcd has no such cap
	})
	return &gaiaCluster{c: c}
}

func (g *gaiaCluster) term() uint64 {
	var t uint64
	for _, n := range g.c.Nodes {
		if r := n.Raft(); r != nil {
			t = max(t, r.CurrentTerm())
		}
	}
	return t
}

// conns opens one plain gRPC connection per address, with no retry or
// balancing; they close in Cleanup.
func (g *gaiaCluster) conns(b *testing.B, addrs []string) []*grpc.ClientConn {
	b.Helper()
	out := make([]*grpc.ClientConn, len(addrs))
	for i, a := range addrs {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()), grpcclient.WithBearer(g.c.AdminToken))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		out[i] = conn
	}
	return out
}

var gaiaNames atomic.Int64

func gaiaRegisterRequest() *coordinatorv1.RegisterSessionRequest {
	return &coordinatorv1.RegisterSessionRequest{
		Name: fmt.Sprintf("bench-%d", gaiaNames.Add(1)), Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER,
		Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: 2,
	}
}

type gaiaSession struct{ id, token string }

func (g *gaiaCluster) register(b *testing.B, conns []*grpc.ClientConn, n int) []gaiaSession {
	b.Helper()
	out := make([]gaiaSession, n)
	parallel(b, n, len(conns), func(ctx context.Context, w, i int) error {
		_, err := retry(ctx, func() error {
			resp, err := coordinatorv1.NewSessionServiceClient(conns[w]).RegisterSession(ctx, gaiaRegisterRequest())
			if err == nil {
				out[i] = gaiaSession{resp.GetSession().GetSessionId(), resp.GetSessionToken()}
			}
			return err
		})
		return err
	})
	return out
}

func gaiaRegister(b *testing.B, g *gaiaCluster) {
	conns := g.conns(b, repeat(g.c.Leader().GRPCAddr, benchClients))
	measure(b, g.term, len(conns), func(ctx context.Context, w int) error {
		_, err := retry(ctx, func() error {
			_, err := coordinatorv1.NewSessionServiceClient(conns[w]).RegisterSession(ctx, gaiaRegisterRequest())
			return err
		})
		return err
	})
}

func gaiaLock(b *testing.B, g *gaiaCluster) {
	conns := g.conns(b, repeat(g.c.Leader().GRPCAddr, benchClients))
	sessions := g.register(b, conns, len(conns))
	measure(b, g.term, len(conns), func(ctx context.Context, w int) error {
		locks, s, key := coordinatorv1.NewLockServiceClient(conns[w]), sessions[w], fmt.Sprintf("bench/lock-%d", w)
		// A repeated acquire by the holder renews what it holds, so both
		// calls may be made again after a lost leader.
		var acq *coordinatorv1.AcquireLockResponse
		_, err := retry(ctx, func() (err error) {
			acq, err = locks.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{
				Key: key, SessionId: s.id, SessionToken: s.token, Ttl: durationpb.New(time.Minute),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("acquire: %w", err)
		}
		retried, err := retry(ctx, func() error {
			_, err := locks.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{
				Key: key, SessionId: s.id, SessionToken: s.token, FencingToken: acq.GetLock().GetFencingToken(),
			})
			return err
		})
		// A release repeated after a lost leader may find its lock released
		// already.
		if c := status.Code(err); err != nil && !(retried && (c == codes.FailedPrecondition || c == codes.NotFound)) {
			return fmt.Errorf("release: %w", err)
		}
		return nil
	})
}

func gaiaHeartbeat(b *testing.B, g *gaiaCluster) {
	registrars := g.conns(b, repeat(g.c.Leader().GRPCAddr, benchClients))
	sessions := g.register(b, registrars, *benchStreams)
	var conns []*grpc.ClientConn
	for range benchConnsPerNode {
		conns = append(conns, g.conns(b, g.c.Addrs())...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	streams := make([]beater, len(sessions))
	for i, s := range sessions {
		client := coordinatorv1.NewSessionServiceClient(conns[i%len(conns)])
		req := &coordinatorv1.HeartbeatRequest{SessionId: s.id, SessionToken: s.token, Activity: "benchmark"}
		streams[i] = reopening(ctx, func() (beater, error) {
			stream, err := client.Heartbeat(ctx)
			if err != nil {
				return nil, err
			}
			return func() error {
				if err := stream.Send(req); err != nil {
					_, err = stream.Recv() // the stream's own error
					return cmp.Or(err, io.ErrUnexpectedEOF)
				}
				_, err := stream.Recv()
				return err
			}, nil
		})
	}
	measureBeats(b, g.term, streams)
}

// --- the load generator, the same for both ---

// retries counts calls repeated after a transient failure: the leader was
// lost, or not yet known, under the load. The figure is reported per run.
var retries atomic.Int64

// transient says whether a failed call may be made again, as the clients of
// both systems would: no leader (gRPC Unavailable), or an etcd lessor not yet
// promoted on a new leader.
func transient(err error) bool {
	return status.Code(err) == codes.Unavailable || strings.Contains(err.Error(), "not a primary lessor") ||
		errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout)
}

// retry calls do until it succeeds, fails for good or ctx ends, pausing
// 10 ms after each transient failure. It reports whether it retried.
func retry(ctx context.Context, do func() error) (retried bool, err error) {
	for {
		err = do()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return retried, err
		}
		retried = true
		retries.Add(1)
		select {
		case <-ctx.Done():
			return retried, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// measure runs op after op of benchCallsPerOp calls of call, one goroutine
// per client taking the next call as soon as it is free, after one
// unmeasured call per client that opens the connections.
func measure(b *testing.B, term func() uint64, clients int, call func(ctx context.Context, w int) error) {
	b.Helper()
	lats := make([][]time.Duration, clients)
	round := func(calls int) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), *benchRoundDeadline)
		defer cancel()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, clients)
		for w := range clients {
			wg.Go(func() {
				for next.Add(1) <= int64(calls) {
					t := time.Now()
					if err := call(ctx, w); err != nil {
						errs[w] = err
						return
					}
					lats[w] = append(lats[w], time.Since(t))
				}
			})
		}
		wg.Wait()
		return time.Since(start), errors.Join(errs...)
	}
	if _, err := round(clients); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	for w := range lats {
		lats[w] = lats[w][:0]
	}
	var elapsed time.Duration
	t0, cpu := term(), processCPU()
	retries.Store(0)
	for b.Loop() {
		d, err := round(benchCallsPerOp)
		if err != nil {
			b.Fatalf("%v (Raft term %d → %d)", err, t0, term())
		}
		elapsed += d
	}
	report(b, slices.Concat(lats...), elapsed, processCPU()-cpu, term()-t0)
}

// beater sends one beat on its stream and waits for the answer. One beater
// is used by one goroutine at a time.
type beater func() error

// reopening is a beater over the streams open makes: it opens one on its
// first beat, and after a stream fails opens another and beats again (with
// retry's pause), as both systems' clients do when a leader is lost.
func reopening(ctx context.Context, open func() (beater, error)) beater {
	var cur beater
	return func() error {
		_, err := retry(ctx, func() error {
			if cur == nil {
				next, err := open()
				if err != nil {
					return err
				}
				cur = next
			}
			err := cur()
			if err != nil {
				cur = nil
			}
			return err
		})
		return err
	}
}

// measureBeats runs rounds in which every stream beats at once, after two
// unmeasured rounds (the first beat of a GAIA session commits its move from
// registered to active through Raft; later ones touch only the leader's
// memory, as an etcd keep-alive does).
func measureBeats(b *testing.B, term func() uint64, streams []beater) {
	b.Helper()
	lat := make([]time.Duration, len(streams))
	round := func() (time.Duration, error) {
		start := time.Now()
		errs := make([]error, len(streams))
		var wg sync.WaitGroup
		for i, beat := range streams {
			wg.Go(func() {
				t := time.Now()
				errs[i] = beat()
				lat[i] = time.Since(t)
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(*benchRoundDeadline):
			b.Fatalf("a keep-alive round took more than %s", *benchRoundDeadline)
		}
		return time.Since(start), errors.Join(errs...)
	}
	for range 2 {
		if _, err := round(); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}
	var all []time.Duration
	var elapsed time.Duration
	t0, cpu := term(), processCPU()
	retries.Store(0)
	for b.Loop() {
		d, err := round()
		if err != nil {
			b.Fatalf("%v (Raft term %d → %d)", err, t0, term())
		}
		elapsed += d
		all = append(all, lat...)
	}
	report(b, all, elapsed, processCPU()-cpu, term()-t0)
}

// parallel runs do for i in [0, n) from workers goroutines: setup, not
// measurement.
func parallel(b *testing.B, n, workers int, do func(ctx context.Context, w, i int) error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), *benchRoundDeadline)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := do(ctx, w, i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("setup: %v", err)
	}
}

func report(b *testing.B, lat []time.Duration, elapsed, cpu time.Duration, elections uint64) {
	b.Helper()
	if len(lat) == 0 {
		b.Fatal("no latencies recorded")
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-cores")
	b.ReportMetric(float64(elections), "elections")
	b.ReportMetric(float64(retries.Swap(0)), "retries")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// freeAddr reserves a loopback port by listening on it and letting it go.
func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
