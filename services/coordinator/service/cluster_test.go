package service_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

func register(t testing.TB, cl *client.Client, name string) (*coordinatorv1.Session, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
		Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: 2,
	})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return resp.GetSession(), resp.GetSessionToken()
}

func acquire(ctx context.Context, cl *client.Client, key, id, token string, ttl, wait time.Duration) (*coordinatorv1.Lock, error) {
	resp, err := cl.Locks().AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{
		Key: key, SessionId: id, SessionToken: token, Ttl: durationpb.New(ttl), WaitTimeout: durationpb.New(wait),
	})
	return resp.GetLock(), err
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// watchEvents collects a session watch from one node into a channel.
func watchEvents(t *testing.T, cl *client.Client, after uint64) <-chan *coordinatorv1.SessionEvent {
	ch := make(chan *coordinatorv1.SessionEvent, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = cl.WatchSessions(ctx, &coordinatorv1.WatchSessionsRequest{AfterIndex: after}, func(e *coordinatorv1.SessionEvent) error {
			select {
			case ch <- e:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	return ch
}

// TestFailoverKeepsSessionsAndLocks kills the leader with sessions
// heartbeating through every node and locks held: a new leader is elected,
// no session is failed, every lock keeps its owner and fencing token, and
// writes resume.
func TestFailoverKeepsSessionsAndLocks(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: 2 * time.Second, HeartbeatInterval: 200 * time.Millisecond, Quiet: true})
	cl := c.Client()
	events := watchEvents(t, c.Client(c.Followers()[0]), 0)

	type held struct {
		id, token string
		lock      *coordinatorv1.Lock
	}
	var sessions []held
	var beaters []*client.Heartbeater
	for i, node := range c.Nodes {
		nodeClient := c.Client(node)
		for j := 0; j < 4; j++ {
			s, tok := register(t, nodeClient, fmt.Sprintf("w-%d-%d", i, j))
			h := cl.StartHeartbeat(context.Background(), s.GetSessionId(), tok, 200*time.Millisecond, func() (int32, string) { return 1, "working" })
			beaters = append(beaters, h)
			l, err := acquire(ctxT(t, 5*time.Second), nodeClient, fmt.Sprintf("repo:web/file-%d-%d", i, j), s.GetSessionId(), tok, time.Minute, 0)
			if err != nil {
				t.Fatal(err)
			}
			sessions = append(sessions, held{s.GetSessionId(), tok, l})
		}
	}
	defer func() {
		for _, h := range beaters {
			h.Stop()
		}
	}()

	old := c.Leader()
	c.WaitConverged()
	c.Kill(old)
	killedAt := time.Now()
	leader := c.Leader()
	if leader == old {
		t.Fatal("killed node still leads")
	}
	t.Logf("new leader %s elected %v after the kill", leader.ID, time.Since(killedAt))

	// Writes resume.
	ctx := ctxT(t, 10*time.Second)
	s, tok := register(t, cl, "after-failover")
	if _, err := acquire(ctx, cl, "after/failover", s.GetSessionId(), tok, time.Minute, 0); err != nil {
		t.Fatalf("acquire after failover: %v", err)
	}
	// Hold on for several lease timeouts: nobody heartbeating may fail.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case e := <-events:
			if e.GetSession().GetName() == "after-failover" {
				continue // it never heartbeats
			}
			if e.GetType() == coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED || e.GetType() == coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_SUSPECT {
				t.Fatalf("session %s went %v across the failover", e.GetSession().GetName(), e.GetType())
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, h := range beaters {
		select {
		case <-h.Lost():
			t.Fatalf("a heartbeater lost its session: %v", h.Err())
		default:
		}
	}
	for _, s := range sessions {
		resp, err := cl.Locks().GetLock(ctx, &coordinatorv1.GetLockRequest{Key: s.lock.GetKey()})
		if err != nil {
			t.Fatalf("get %s: %v", s.lock.GetKey(), err)
		}
		if resp.GetLock().GetOwnerSessionId() != s.id || resp.GetLock().GetFencingToken() != s.lock.GetFencingToken() {
			t.Fatalf("lock %s is now %+v, was owned by %s with token %d", s.lock.GetKey(), resp.GetLock(), s.id, s.lock.GetFencingToken())
		}
		sess, err := cl.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: s.id})
		if err != nil || sess.GetSession().GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE || !sess.GetSession().GetActive() {
			t.Fatalf("session %s after failover: %+v, %v", s.id, sess.GetSession(), err)
		}
	}
}

// TestSilentSessionFailsAndReleasesLocks stops heartbeating: the session is
// failed within the lease timeout plus one heartbeat interval, its locks are
// released, a watcher sees it, and a watcher that resumes from its last index
// misses nothing.
func TestSilentSessionFailsAndReleasesLocks(t *testing.T) {
	const lease, interval = time.Second, 200 * time.Millisecond
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: lease, HeartbeatInterval: interval, Quiet: true})
	cl := c.Client()
	watcher := c.Client(c.Followers()[0])

	// A first watch that will be interrupted after the registration event.
	ctx1, cancel1 := context.WithCancel(context.Background())
	var lastIndex uint64
	gotRegistered := make(chan struct{})
	go func() {
		_ = watcher.WatchSessions(ctx1, &coordinatorv1.WatchSessionsRequest{AfterIndex: 0}, func(e *coordinatorv1.SessionEvent) error {
			if e.GetSession().GetName() == "silent" && e.GetType() == coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_REGISTERED {
				lastIndex = e.GetIndex()
				cancel1()
				close(gotRegistered)
			}
			return nil
		})
	}()
	s, tok := register(t, cl, "silent")
	<-gotRegistered

	h := cl.StartHeartbeat(context.Background(), s.GetSessionId(), tok, interval, nil)
	l, err := acquire(ctxT(t, 5*time.Second), cl, "repo:web/src/app.go", s.GetSessionId(), tok, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Let it beat a few times, then go silent.
	waitFor(t, 5*time.Second, "session never became active", func() bool {
		r, err := cl.Sessions().GetSession(ctxT(t, time.Second), &coordinatorv1.GetSessionRequest{SessionId: s.GetSessionId()})
		return err == nil && r.GetSession().GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE
	})
	h.Stop()
	lastBeat, _ := h.LastAck()
	lastBeat = lastBeat.Add(-lease) // the ack carries lease expiry = beat + lease

	// Resume the watch from the last index seen.
	var resumed []*coordinatorv1.SessionEvent
	failed := make(chan time.Time, 1)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() {
		_ = watcher.WatchSessions(ctx2, &coordinatorv1.WatchSessionsRequest{AfterIndex: lastIndex}, func(e *coordinatorv1.SessionEvent) error {
			if e.GetSession().GetName() == "silent" {
				resumed = append(resumed, e)
				if e.GetType() == coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED {
					failed <- time.Now()
					cancel2()
				}
			}
			return nil
		})
	}()
	var failedAt time.Time
	select {
	case failedAt = <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("silent session never failed")
	}
	// Time is measured on one machine: the watcher's clock is the leader's.
	if took := failedAt.Sub(lastBeat); took > lease+interval+150*time.Millisecond {
		t.Errorf("failed %v after the last beat, want within lease %v + interval %v", took, lease, interval)
	}
	var types []coordinatorv1.SessionEventType
	for _, e := range resumed {
		types = append(types, e.GetType())
	}
	want := []coordinatorv1.SessionEventType{
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_ACTIVE,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_SUSPECT,
		coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED,
	}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("resumed watch saw %v, want %v", types, want)
	}
	if got := resumed[len(resumed)-1].GetReleasedLockKeys(); len(got) != 1 || got[0] != l.GetKey() {
		t.Fatalf("failed event released %v, want [%s]", got, l.GetKey())
	}
	if _, err := cl.Locks().GetLock(ctxT(t, 5*time.Second), &coordinatorv1.GetLockRequest{Key: l.GetKey()}); status.Code(err) != codes.NotFound {
		t.Fatalf("lock of a failed session: %v, want NOT_FOUND", err)
	}
	// Its stale fencing token is refused.
	_, err = cl.Locks().RenewLock(ctxT(t, 5*time.Second), &coordinatorv1.RenewLockRequest{Key: l.GetKey(), SessionId: s.GetSessionId(), SessionToken: tok, FencingToken: l.GetFencingToken()})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("renew by the failed session: %v, want FAILED_PRECONDITION", err)
	}
	// And its heartbeat stream is told so.
	h2 := cl.StartHeartbeat(context.Background(), s.GetSessionId(), tok, interval, nil)
	defer h2.Stop()
	select {
	case <-h2.Lost():
		if status.Code(h2.Err()) != codes.FailedPrecondition {
			t.Fatalf("heartbeat of a failed session ended with %v", h2.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("heartbeat of a failed session was not refused")
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPartitionedNodeGrantsNothing cuts the leader off: it grants nothing,
// the majority elects a leader that does, and after healing the old leader
// converges to the majority's state.
func TestPartitionedNodeGrantsNothing(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true})
	cl := c.Client()
	a, atok := register(t, cl, "a")
	b, btok := register(t, cl, "b")

	old := c.Leader()
	c.Isolate(old)
	isolated := c.Client(old)
	// The isolated node cannot commit: its grant attempt fails.
	_, err := acquire(ctxT(t, 3*time.Second), isolated, "contested", a.GetSessionId(), atok, time.Minute, 0)
	if err == nil {
		t.Fatal("an isolated node granted a lock")
	}
	t.Logf("isolated node answered: %v", err)

	// The majority elects a new leader and grants.
	majority := c.Client(c.Nodes[indexOtherThan(c, old)])
	var granted *coordinatorv1.Lock
	waitFor(t, 10*time.Second, "majority never granted", func() bool {
		granted, err = acquire(ctxT(t, 2*time.Second), majority, "contested", b.GetSessionId(), btok, time.Minute, 0)
		return err == nil
	})
	if granted.GetOwnerSessionId() != b.GetSessionId() {
		t.Fatalf("granted %+v", granted)
	}
	c.Heal()
	c.WaitConverged()
	// Every node, the old leader included, agrees on the holder.
	for _, n := range c.Nodes {
		resp, err := c.Client(n).Locks().GetLock(ctxT(t, 10*time.Second), &coordinatorv1.GetLockRequest{Key: "contested"})
		if err != nil || resp.GetLock().GetOwnerSessionId() != b.GetSessionId() || resp.GetLock().GetFencingToken() != granted.GetFencingToken() {
			t.Fatalf("via %s: %+v, %v", n.ID, resp.GetLock(), err)
		}
	}
}

func indexOtherThan(c *coordtest.Cluster, n *coordtest.Node) int {
	for i, x := range c.Nodes {
		if x != n {
			return i
		}
	}
	return -1
}

// TestFullRestartKeepsState stops every node and starts them again from
// disk: registrations and locks are kept and lease timers re-armed.
func TestFullRestartKeepsState(t *testing.T) {
	// The lease must outlast registering all 40 sessions, which never beat,
	// on a loaded machine; with one second the first session often failed
	// (and lost its lock) before the restart.
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: 5 * time.Second, HeartbeatInterval: 200 * time.Millisecond, SnapshotThreshold: 16, Quiet: true})
	cl := c.Client()
	type reg struct {
		id, token string
		lock      *coordinatorv1.Lock
	}
	var regs []reg
	for i := 0; i < 40; i++ { // more entries than the snapshot threshold
		s, tok := register(t, cl, fmt.Sprintf("r-%d", i))
		l, err := acquire(ctxT(t, 5*time.Second), cl, fmt.Sprintf("k/%d", i), s.GetSessionId(), tok, time.Hour, 0)
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, reg{s.GetSessionId(), tok, l})
	}
	c.WaitConverged()
	for _, n := range c.Nodes {
		c.Kill(n)
	}
	for _, n := range c.Nodes {
		c.Restart(n)
	}
	c.Leader()
	cl = c.Client()
	for _, r := range regs {
		resp, err := cl.Locks().GetLock(ctxT(t, 10*time.Second), &coordinatorv1.GetLockRequest{Key: r.lock.GetKey()})
		if err != nil || resp.GetLock().GetOwnerSessionId() != r.id || resp.GetLock().GetFencingToken() != r.lock.GetFencingToken() {
			t.Fatalf("after restart lock %s = %+v, %v", r.lock.GetKey(), resp.GetLock(), err)
		}
	}
	// Lease timers were re-armed: a session that heartbeats stays, one that
	// does not fails and loses its lock.
	h := cl.StartHeartbeat(context.Background(), regs[0].id, regs[0].token, 200*time.Millisecond, nil)
	defer h.Stop()
	waitFor(t, 20*time.Second, "silent session not failed after restart", func() bool {
		r, err := cl.Sessions().GetSession(ctxT(t, time.Second), &coordinatorv1.GetSessionRequest{SessionId: regs[1].id})
		return err == nil && r.GetSession().GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_FAILED
	})
	r, err := cl.Sessions().GetSession(ctxT(t, 5*time.Second), &coordinatorv1.GetSessionRequest{SessionId: regs[0].id})
	if err != nil || r.GetSession().GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE {
		t.Fatalf("heartbeating session after restart: %+v, %v", r.GetSession(), err)
	}
}

// TestLockWaitersAreServedInOrder queues three waiters behind a holder: each
// gets the lock in arrival order as the previous one releases it.
func TestLockWaitersAreServedInOrder(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true})
	cl := c.Client()
	holder, htok := register(t, cl, "holder")
	first, err := acquire(ctxT(t, 5*time.Second), cl, "migration", holder.GetSessionId(), htok, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acquire(ctxT(t, 5*time.Second), cl, "migration", "nobody-"+holder.GetSessionId()[7:], htok, time.Minute, 0); status.Code(err) != codes.NotFound {
		t.Fatalf("acquire by unknown session: %v", err)
	}
	s2, _ := register(t, cl, "other")
	if _, err := acquire(ctxT(t, 5*time.Second), cl, "migration", s2.GetSessionId(), "wrong-token", time.Minute, 0); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("acquire with a wrong token: %v", err)
	}

	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	grants := make(chan *coordinatorv1.Lock, 3)
	for i := 0; i < 3; i++ {
		s, tok := register(t, cl, fmt.Sprintf("waiter-%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := acquire(ctxT(t, 30*time.Second), cl, "migration", s.GetSessionId(), tok, time.Minute, 20*time.Second)
			if err != nil {
				t.Errorf("waiter %s: %v", s.GetName(), err)
				return
			}
			mu.Lock()
			order = append(order, s.GetName())
			mu.Unlock()
			grants <- l
			_, err = cl.Locks().ReleaseLock(ctxT(t, 5*time.Second), &coordinatorv1.ReleaseLockRequest{Key: "migration", SessionId: s.GetSessionId(), SessionToken: tok, FencingToken: l.GetFencingToken()})
			if err != nil {
				t.Errorf("release by %s: %v", s.GetName(), err)
			}
		}()
		// Wait until this waiter is queued before the next one arrives.
		waitFor(t, 5*time.Second, "waiter never queued", func() bool {
			r, err := cl.Locks().GetLock(ctxT(t, time.Second), &coordinatorv1.GetLockRequest{Key: "migration"})
			return err == nil && int(r.GetLock().GetWaiters()) == i+1
		})
	}
	// A no-wait acquire while others queue is refused at once.
	if _, err := acquire(ctxT(t, 5*time.Second), cl, "migration", s2.GetSessionId(), "wrong", time.Minute, 0); err == nil {
		t.Fatal("queue jumped")
	}
	if _, err := cl.Locks().ReleaseLock(ctxT(t, 5*time.Second), &coordinatorv1.ReleaseLockRequest{Key: "migration", SessionId: holder.GetSessionId(), SessionToken: htok, FencingToken: first.GetFencingToken()}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(grants)
	if fmt.Sprint(order) != "[waiter-0 waiter-1 waiter-2]" {
		t.Fatalf("grant order %v", order)
	}
	last := first.GetFencingToken()
	for l := range grants {
		if l.GetFencingToken() <= last {
			t.Fatalf("fencing tokens not increasing: %d after %d", l.GetFencingToken(), last)
		}
		last = l.GetFencingToken()
	}
}

// TestHolderReacquireWithWaitDoesNotQueueBehindWaiters is the regression
// test for a bug the linearizability test found: a holder acquiring its own
// lock again with a wait_timeout (as a client retrying after a lost answer
// does) queued behind the waiters, waited for itself and got
// DEADLINE_EXCEEDED while holding the lock.
func TestHolderReacquireWithWaitDoesNotQueueBehindWaiters(t *testing.T) {
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	cl := c.Client()
	holder, htok := register(t, cl, "holder")
	waiter, wtok := register(t, cl, "waiter")
	first, err := acquire(ctxT(t, 5*time.Second), cl, "k", holder.GetSessionId(), htok, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := acquire(ctxT(t, 30*time.Second), cl, "k", waiter.GetSessionId(), wtok, time.Minute, 20*time.Second)
		waiting <- err
	}()
	waitFor(t, 5*time.Second, "waiter never queued", func() bool {
		r, err := cl.Locks().GetLock(ctxT(t, time.Second), &coordinatorv1.GetLockRequest{Key: "k"})
		return err == nil && r.GetLock().GetWaiters() == 1
	})
	start := time.Now()
	again, err := acquire(ctxT(t, 10*time.Second), cl, "k", holder.GetSessionId(), htok, time.Minute, 2*time.Second)
	if err != nil || again.GetFencingToken() != first.GetFencingToken() {
		t.Fatalf("re-acquire by the holder = %+v, %v; want token %d", again, err, first.GetFencingToken())
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("re-acquire by the holder took %v: it waited behind the queue", took)
	}
	if _, err := cl.Locks().ReleaseLock(ctxT(t, 5*time.Second), &coordinatorv1.ReleaseLockRequest{Key: "k", SessionId: holder.GetSessionId(), SessionToken: htok, FencingToken: first.GetFencingToken()}); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("waiter after the release: %v", err)
	}
}
