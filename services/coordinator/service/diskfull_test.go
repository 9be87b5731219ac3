package service_test

// A full disk on the leader (issue 17): the node that cannot write its log
// answers UNAVAILABLE, gives up leadership and stands for no election while
// its disk is full, and takes part again on its own when space returns.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/coordinator/internal/proctest"
)

// Bounds of TestFullDiskOnLeader.
const (
	diskFullTmpfs = "32m"
	// diskFullMove bounds the time from filling the leader's disk to
	// another node leading: the leader's next log write fails (within a
	// batch or two), Raft steps it down, the others elect a leader.
	diskFullMove = 10 * time.Second
	// diskFullHold is how long the disk stays full once leadership has
	// moved: many election timeouts, in which the full node must not lead.
	diskFullHold = 4 * time.Second
	// diskFullRecover bounds the time from freeing the disk to the node
	// finding its storage writable (it probes every second).
	diskFullRecover = 5 * time.Second
)

// ackedWrite is a write the cluster acknowledged: a session registered and,
// when lock is set, a lock granted to it.
type ackedWrite struct {
	session string
	lock    string
	token   uint64
	at      time.Time
}

// answer is one direct write to the full node and what it answered.
type answer struct {
	at   time.Time
	code codes.Code
	hint string // the gaia-leader trailer
	err  error
}

// diskFullLoad writes steadily: sessions and locks through a client of every
// node (which retries UNAVAILABLE elsewhere), and registrations straight to
// one node, with no retry, to see its every answer.
type diskFullLoad struct {
	t    *testing.T
	c    *proctest.Cluster
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	acked   []ackedWrite
	direct  []answer
	failed  []error // writes through the cluster that failed
	unknown int     // registrations answered ALREADY_EXISTS after a retry
}

func startDiskFullLoad(t *testing.T, c *proctest.Cluster, direct *proctest.Node) *diskFullLoad {
	l := &diskFullLoad{t: t, c: c, stop: make(chan struct{})}
	for w := range 2 {
		cl := c.Client()
		l.wg.Go(func() { l.throughCluster(cl, w) })
	}
	l.wg.Go(func() { l.straightTo(direct) })
	return l
}

func (l *diskFullLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *diskFullLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

// diskFullPace spaces each writer's writes: steady, and well below the
// per-credential rate limit (1,000 requests a second, each node counting
// what it forwards too) that unpaced writers pass now that a write commits
// in a few milliseconds: about 500 writes a second reach the leader.
const diskFullPace = 10 * time.Millisecond

func (l *diskFullLoad) throughCluster(cl *client.Client, w int) {
	pace := time.NewTicker(diskFullPace)
	defer pace.Stop()
	for i := 0; !l.stopped(); i++ {
		<-pace.C
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		name := fmt.Sprintf("diskfull-%d-%d", w, i)
		resp, err := cl.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
			Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: 1,
		})
		if err != nil {
			cancel()
			l.mu.Lock()
			if status.Code(err) == codes.AlreadyExists {
				// Committed, but the answer was lost and the retry found
				// the name taken: not acknowledged.
				l.unknown++
			} else {
				l.failed = append(l.failed, fmt.Errorf("register %s: %w", name, err))
			}
			l.mu.Unlock()
			continue
		}
		s := resp.GetSession()
		l.record(ackedWrite{session: s.GetSessionId(), at: time.Now()})
		lock, err := acquire(ctx, cl, "diskfull/"+name, s.GetSessionId(), resp.GetSessionToken(), time.Hour, 0)
		cancel()
		if err != nil {
			l.mu.Lock()
			l.failed = append(l.failed, fmt.Errorf("acquire diskfull/%s: %w", name, err))
			l.mu.Unlock()
			continue
		}
		l.record(ackedWrite{session: s.GetSessionId(), lock: lock.GetKey(), token: lock.GetFencingToken(), at: time.Now()})
	}
}

func (l *diskFullLoad) straightTo(n *proctest.Node) {
	sessions := coordinatorv1.NewSessionServiceClient(l.c.Conn(n))
	pace := time.NewTicker(diskFullPace)
	defer pace.Stop()
	for i := 0; !l.stopped(); i++ {
		<-pace.C
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var trailer metadata.MD
		resp, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
			Name: fmt.Sprintf("diskfull-direct-%d", i), Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: 1,
		}, grpc.Trailer(&trailer))
		cancel()
		a := answer{at: time.Now(), code: status.Code(err), err: err}
		if h := trailer.Get(grpcclient.LeaderTrailer); len(h) > 0 {
			a.hint = h[0]
		}
		l.mu.Lock()
		l.direct = append(l.direct, a)
		l.mu.Unlock()
		if err == nil {
			l.record(ackedWrite{session: resp.GetSession().GetSessionId(), at: a.at})
		} else {
			// Not a tight loop against a node that refuses.
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (l *diskFullLoad) record(w ackedWrite) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = append(l.acked, w)
}

func (l *diskFullLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// longestGap is the longest time without an acknowledged write from
// `from` on (the first gap runs from `from` to the first ack after it).
func (l *diskFullLoad) longestGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var times []time.Time
	for _, w := range l.acked {
		if w.at.After(from) && w.at.Before(to) {
			times = append(times, w.at)
		}
	}
	// Three writers append concurrently: sort by time.
	for i := 1; i < len(times); i++ {
		for j := i; j > 0 && times[j].Before(times[j-1]); j-- {
			times[j], times[j-1] = times[j-1], times[j]
		}
	}
	gap, prev := time.Duration(0), from
	for _, at := range times {
		gap, prev = max(gap, at.Sub(prev)), at
	}
	return max(gap, to.Sub(prev))
}

// fillDisk fills the file system that holds dir with one file and returns
// its path. Whatever Raft had free inside its own files stays free, as on
// a real disk.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	size := int64(fs.Bavail) * fs.Bsize
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill %s: %v", dir, err)
	}
	// Then page by page, up to the last one.
	for {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Fallocate(int(f.Fd()), 0, st.Size(), 4096); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
}

// TestFullDiskOnLeader fills the leader's disk (its data directory is a
// tmpfs of its own) while clients write steadily: through a client of all
// three nodes, and straight to the leader with no retry. The full node must
// answer UNAVAILABLE, never INTERNAL; leadership must move off it within
// diskFullMove and it must win no election while the disk stays full; its
// status, readiness must say why. When the disk is freed it must find its
// storage writable within diskFullRecover, catch up, and take leadership
// again by transfer; every acknowledged write must then be in its state.
func TestFullDiskOnLeader(t *testing.T) {
	c := proctest.Start(t, proctest.Options{DataDirTmpfsSize: diskFullTmpfs})
	full := c.WaitConverged(30 * time.Second)
	load := startDiskFullLoad(t, c, full)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.end()
		}
	}()
	if !pollUntil(time.Now().Add(10*time.Second), func() bool { return load.ackCount() >= 30 }) {
		t.Fatalf("no steady writes before the fault: %d acknowledged", load.ackCount())
	}

	logMark := len(c.Log(full))
	filledAt := time.Now()
	filler := fillDisk(t, full.DataDir)
	t.Cleanup(func() { _ = os.Remove(filler) })

	// Leadership moves off the full node.
	var newLeader *proctest.Node
	if !pollUntil(filledAt.Add(diskFullMove), func() bool {
		newLeader = c.Leader()
		return newLeader != nil && newLeader != full
	}) {
		t.Fatalf("leadership did not move off full node %s within %v (leader now %v)", full.ID, diskFullMove, newLeader)
	}
	movedAt := time.Now()

	// The full node says why, and is not ready.
	var st *coordinatorv1.GetClusterStatusResponse
	if !pollUntil(time.Now().Add(5*time.Second), func() bool {
		st = c.Status(full, time.Second)
		return st != nil && st.GetStorageError() != ""
	}) {
		t.Fatalf("the full node's status names no storage error: %v", st)
	}
	t.Logf("full node's status: storage_error %q", st.GetStorageError())
	// Readiness is re-evaluated every 100 ms; the probe can find the full
	// disk, and leadership move, within one such tick.
	var ready healthpb.HealthCheckResponse_ServingStatus
	if !pollUntil(time.Now().Add(time.Second), func() bool {
		ready = readiness(t, c, full)
		return ready == healthpb.HealthCheckResponse_NOT_SERVING
	}) {
		t.Errorf("full node's readiness is %v a second after its status named the storage error, want NOT_SERVING", ready)
	}

	// The disk stays full for many election timeouts: the full node must
	// not lead again, and the cluster keeps taking writes.
	holdUntil := time.Now().Add(diskFullHold)
	for time.Now().Before(holdUntil) {
		if st := c.Status(full, 300*time.Millisecond); st != nil && st.GetLeader().GetNodeId() == full.ID {
			t.Errorf("full node %s leads again at %s", full.ID, time.Now().Format("15:04:05.000"))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	freedAt := time.Now()
	logWhileFull := c.Log(full)[logMark:]
	won := strings.Count(logWhileFull, "entering leader state")
	failedAt := logTime(logWhileFull, "raft storage cannot be written")
	if failedAt.IsZero() {
		t.Errorf("full node %s never logged that it cannot write its storage", full.ID)
	}
	if won > 0 {
		t.Errorf("full node %s won %d elections while its disk was full", full.ID, won)
	}
	writeGap := load.longestGap(filledAt, freedAt)
	acksWhileFull := 0
	load.mu.Lock()
	for _, w := range load.acked {
		if w.at.After(movedAt) && w.at.Before(freedAt) {
			acksWhileFull++
		}
	}
	load.mu.Unlock()
	if acksWhileFull == 0 {
		t.Errorf("no write acknowledged between the move (%s) and freeing the disk (%s)", movedAt.Format("15:04:05.000"), freedAt.Format("15:04:05.000"))
	}

	// Space returns.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !pollUntil(freedAt.Add(diskFullRecover), func() bool {
		st := c.Status(full, time.Second)
		return st != nil && st.GetStorageError() == ""
	}) {
		t.Fatalf("full node %s did not find its storage writable within %v of freeing it", full.ID, diskFullRecover)
	}
	writableAt := time.Now()
	c.WaitConverged(30 * time.Second)
	caughtUpAt := time.Now()
	if !pollUntil(time.Now().Add(5*time.Second), func() bool {
		return readiness(t, c, full) == healthpb.HealthCheckResponse_SERVING
	}) {
		t.Errorf("recovered node %s is not ready", full.ID)
	}

	// It can lead again.
	if _, err := c.Client().Cluster().TransferLeadership(ctxT(t, 10*time.Second), &coordinatorv1.TransferLeadershipRequest{NodeId: full.ID}); err != nil {
		t.Fatalf("transfer leadership to the recovered node %s: %v", full.ID, err)
	}
	if !pollUntil(time.Now().Add(10*time.Second), func() bool { return c.Leader() == full }) {
		t.Fatalf("recovered node %s did not take leadership by transfer", full.ID)
	}
	acked := load.ackCount()
	if !pollUntil(time.Now().Add(10*time.Second), func() bool { return load.ackCount() >= acked+10 }) {
		t.Errorf("writes stalled after leadership returned to %s", full.ID)
	}
	load.end()

	// Every direct answer from the full node is OK or UNAVAILABLE. Once
	// another node leads (and has had a second to tell it), the full node
	// passes writes on to it; an UNAVAILABLE then names the new leader.
	codesSeen := map[codes.Code]int{}
	hinted, forwardedWhileFull := 0, 0
	for _, a := range load.direct {
		codesSeen[a.code]++
		known := a.at.After(movedAt.Add(time.Second)) && a.at.Before(freedAt)
		switch a.code {
		case codes.OK:
			if known {
				forwardedWhileFull++
			}
		case codes.Unavailable:
			if a.hint != "" {
				hinted++
			}
			if known && (a.hint == "" || a.hint == full.GRPCAddr) {
				t.Errorf("full node answered UNAVAILABLE at %s with leader hint %q, after %s led: %v", a.at.Format("15:04:05.000"), a.hint, newLeader.ID, a.err)
			}
		default:
			t.Errorf("full node answered a write with %v at %s, want OK or UNAVAILABLE: %v", a.code, a.at.Format("15:04:05.000"), a.err)
		}
	}
	if forwardedWhileFull == 0 {
		t.Errorf("no write straight to the full node succeeded while %s led: it does not pass writes on", newLeader.ID)
	}
	for _, err := range load.failed {
		t.Errorf("a write through the cluster failed: %v", err)
	}

	// Every acknowledged write is in the recovered leader's own state.
	cl := c.Client(full)
	for _, w := range load.acked {
		if w.lock == "" {
			if _, err := cl.Sessions().GetSession(ctxT(t, 5*time.Second), &coordinatorv1.GetSessionRequest{SessionId: w.session}); err != nil {
				t.Errorf("acknowledged session %s lost: %v", w.session, err)
			}
			continue
		}
		resp, err := cl.Locks().GetLock(ctxT(t, 5*time.Second), &coordinatorv1.GetLockRequest{Key: w.lock})
		if err != nil || resp.GetLock().GetOwnerSessionId() != w.session || resp.GetLock().GetFencingToken() != w.token {
			t.Errorf("acknowledged lock %s (session %s, token %d) lost: %+v, %v", w.lock, w.session, w.token, resp.GetLock(), err)
		}
	}

	t.Logf("disk of leader %s filled at %s; its first failed write %v later; %s led %v after that; longest time without an acknowledged write %v; "+
		"%d writes acknowledged while the disk stayed full; elections won by the full node: %d; "+
		"storage writable %v after freeing, cluster converged %v after; "+
		"direct answers from the full node: %v (%d UNAVAILABLE with a leader hint, %d passed on to the new leader while full); %d acknowledged writes checked, %d registrations of unknown outcome",
		full.ID, filledAt.Format("15:04:05.000"), failedAt.Sub(filledAt).Round(time.Millisecond), newLeader.ID, movedAt.Sub(failedAt).Round(time.Millisecond), writeGap.Round(time.Millisecond),
		acksWhileFull, won, writableAt.Sub(freedAt).Round(time.Millisecond), caughtUpAt.Sub(freedAt).Round(time.Millisecond),
		codesSeen, hinted, forwardedWhileFull, len(load.acked), load.unknown)
}

// logTime is the time of the first line of a node's log (zap JSON) that
// holds msg; zero if none does.
func logTime(log, msg string) time.Time {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		var entry struct {
			TS time.Time `json:"ts"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil {
			return entry.TS
		}
	}
	return time.Time{}
}

// readiness is a node's readiness health status, UNKNOWN when it does not
// answer.
func readiness(t *testing.T, c *proctest.Cluster, n *proctest.Node) healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(c.Conn(n)).Check(ctx, &healthpb.HealthCheckRequest{Service: "readiness"})
	if err != nil {
		t.Logf("readiness of %s: %v", n.ID, err)
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}
