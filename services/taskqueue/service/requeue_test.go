package service_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

const (
	shortLease = time.Second
	shortBeat  = 200 * time.Millisecond
)

// TestTasksOfAFailedHolderComeBackWithinTheLease stops a holder's heartbeats:
// the coordinator fails the session, and its claims are pending again within
// the lease timeout plus a second of its last heartbeat; another session
// claims and completes them, and the old holder's completion is refused.
func TestTasksOfAFailedHolderComeBackWithinTheLease(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: shortLease, HeartbeatInterval: shortBeat}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	holder := e.register(ctx, "holder", agentOpts{maxTasks: 5, beat: shortBeat})
	rescuer := e.register(ctx, "rescuer", agentOpts{maxTasks: 5, beat: shortBeat})
	lesson := e.lesson(ctx, "fail", "fail", 0).GetLessonId()
	for i := range 3 {
		e.enqueue(ctx, newTaskReq(keyOf("held", i), "work", 0, lesson, i))
	}
	claims := e.mustClaim(ctx, holder, 3)

	holder.hb.Stop()
	leaseEnd, _ := holder.hb.LastAck()
	lastBeat := leaseEnd.Add(-shortLease)
	deadline := lastBeat.Add(shortLease + time.Second)
	eventually(t, time.Until(deadline)+5*time.Second, "the failed holder's tasks back to pending", func() (bool, error) {
		var pending int
		err := e.db.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE state = 'pending' AND claimed_by_session_id IS NULL`).Scan(&pending)
		return pending == 3, err
	})
	back := time.Now()
	t.Logf("tasks pending %s after the holder's last heartbeat (lease %s)", back.Sub(lastBeat).Round(time.Millisecond), shortLease)
	if back.After(deadline) {
		t.Fatalf("tasks came back %s after the last heartbeat, want within %s", back.Sub(lastBeat), shortLease+time.Second)
	}
	sess, err := e.coordc.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: holder.id})
	if err != nil || sess.GetSession().GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_FAILED {
		t.Fatalf("holder session: %v, %v; want failed", sess.GetSession().GetStatus(), err)
	}
	for _, c := range claims {
		task := e.getTask(ctx, c.GetTask().GetTaskId())
		if task.GetAttempt() != 1 || task.GetLastError() == "" {
			t.Errorf("requeued task: attempt %d, last_error %q; want attempt 1 counted and a reason", task.GetAttempt(), task.GetLastError())
		}
	}

	again := e.mustClaim(ctx, rescuer, 3)
	for _, c := range again {
		if c.GetTask().GetAttempt() != 2 || c.GetTask().GetClaimedBySessionId() != rescuer.id {
			t.Fatalf("rescuer's claim: attempt %d by %s", c.GetTask().GetAttempt(), c.GetTask().GetClaimedBySessionId())
		}
		if _, err := e.complete(ctx, rescuer, c); err != nil {
			t.Fatalf("rescuer completes: %v", err)
		}
	}
	for _, c := range claims {
		_, err := e.complete(ctx, holder, c)
		wantStatus(t, err, codes.FailedPrecondition, "")
		_, err = e.fail(ctx, holder, c, true)
		wantStatus(t, err, codes.FailedPrecondition, "")
	}
	e.wantLesson(ctx, lesson, 3, 3, 0)
}

// TestFailedHolderOutOfAttemptsIsDead: a claim taken back from a failed
// session counts its attempt, so a task on its last attempt is dead.
func TestFailedHolderOutOfAttemptsIsDead(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: shortLease, HeartbeatInterval: shortBeat}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	holder := e.register(ctx, "holder", agentOpts{maxTasks: 2, beat: shortBeat})
	lesson := e.lesson(ctx, "fail", "last", 0).GetLessonId()
	req := newTaskReq("last-attempt", "work", 0, lesson, 0)
	req.MaxAttempts = 1
	id := e.enqueue(ctx, req).GetTaskId()
	e.mustClaim(ctx, holder, 1)
	holder.hb.Stop()
	eventually(t, 10*time.Second, "task dead", func() (bool, error) {
		st, _ := e.dbTaskState(ctx, id)
		return st == "dead", nil
	})
	e.wantLesson(ctx, lesson, 1, 0, 1)
}

// TestExpiredClaimIsReapedAndItsTokenRefused: a live holder that neither
// settles nor extends a claim loses it when its lease (the task's
// claim_timeout) runs out; the reaper requeues it and the old token is
// refused everywhere, while an extended claim survives.
func TestExpiredClaimIsReapedAndItsTokenRefused(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{ReapInterval: 50 * time.Millisecond})
	ctx := testCtx(t, time.Minute)
	holder := e.register(ctx, "slow", agentOpts{maxTasks: 2, beat: 500 * time.Millisecond})
	other := e.register(ctx, "other", agentOpts{maxTasks: 2, beat: 500 * time.Millisecond})

	const lease = time.Second
	expiring := newTaskReq("expiring", "work", 5, "", 0)
	expiring.ClaimTimeout = durationpb.New(lease)
	// The extended claim's own lease leaves a loaded machine time to extend it.
	extended := newTaskReq("extended", "work", 0, "", 1)
	extended.ClaimTimeout = durationpb.New(3 * lease)
	eid := e.enqueue(ctx, expiring).GetTaskId()
	xid := e.enqueue(ctx, extended).GetTaskId()
	claims := e.mustClaim(ctx, holder, 2)
	var stale, kept *taskqueuev1.Claim
	for _, c := range claims {
		if c.GetTask().GetTaskId() == eid {
			stale = c
		} else {
			kept = c
		}
	}
	if stale == nil || kept == nil {
		t.Fatalf("claims %v do not hold both tasks", claims)
	}
	if got := stale.GetLeaseExpiresAt().AsTime().Sub(stale.GetTask().GetUpdatedAt().AsTime()); got < lease-10*time.Millisecond || got > lease+10*time.Millisecond {
		t.Fatalf("lease of the claim is %s, want the task's claim_timeout %s", got, lease)
	}

	// Keep one claim alive past its own lease by extending it.
	ext, err := e.tasks.ExtendClaim(ctx, &taskqueuev1.ExtendClaimRequest{TaskId: xid, ClaimToken: kept.GetClaimToken(), SessionId: holder.id, SessionToken: holder.token, Extension: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatalf("extend: %v", err)
	}
	if d := time.Until(ext.GetLeaseExpiresAt().AsTime()); d < 50*time.Second {
		t.Fatalf("extended lease runs out in %s, want about a minute", d)
	}
	eventually(t, 10*time.Second, "expired claim reaped", func() (bool, error) {
		st, _ := e.dbTaskState(ctx, eid)
		return st == "pending", nil
	})
	if got := time.Since(stale.GetLeaseExpiresAt().AsTime()); got > 3*time.Second {
		t.Errorf("reaped %s after the lease ran out", got)
	}
	task := e.getTask(ctx, eid)
	if task.GetAttempt() != 1 || task.GetClaimedBySessionId() != "" || task.GetLastError() == "" {
		t.Fatalf("reaped task: %+v", task)
	}

	// The old token is refused for every settlement, before and after the
	// task is claimed again.
	refused := func(when string) {
		t.Helper()
		_, err := e.complete(ctx, holder, stale)
		wantStatus(t, err, codes.FailedPrecondition, "")
		_, err = e.fail(ctx, holder, stale, false)
		wantStatus(t, err, codes.FailedPrecondition, "")
		_, err = e.tasks.ExtendClaim(ctx, &taskqueuev1.ExtendClaimRequest{TaskId: eid, ClaimToken: stale.GetClaimToken(), SessionId: holder.id, SessionToken: holder.token})
		wantStatus(t, err, codes.FailedPrecondition, "")
		if t.Failed() {
			t.Fatalf("stale token accepted %s", when)
		}
	}
	refused("while the task is pending")
	fresh := e.mustClaim(ctx, other, 1)[0]
	if fresh.GetTask().GetTaskId() != eid || fresh.GetTask().GetAttempt() != 2 || fresh.GetClaimToken() != fmt.Sprintf("%s.2", eid) {
		t.Fatalf("reclaim: %+v token %s", fresh.GetTask(), fresh.GetClaimToken())
	}
	refused("while another session holds the task")
	if _, err := e.complete(ctx, other, fresh); err != nil {
		t.Fatal(err)
	}
	// The extended claim outlives its original lease and a few reaper
	// rounds after it.
	originalEnd := kept.GetLeaseExpiresAt().AsTime().Add(200 * time.Millisecond)
	eventually(t, 10*time.Second, "the extended claim's original lease over", func() (bool, error) {
		return time.Now().After(originalEnd), nil
	})
	if _, err := e.complete(ctx, holder, kept); err != nil {
		t.Fatalf("the extended claim was lost: %v", err)
	}
	if st, attempt := e.dbTaskState(ctx, xid); st != "completed" || attempt != 1 {
		t.Fatalf("extended task: %s at attempt %d", st, attempt)
	}
}

// TestLongPollOfAFailedSessionClaimsNothing: a session that fails while its
// ClaimTasks long-polls must not be handed a task that arrives afterwards;
// the task goes to a live session at once instead of sitting with a dead
// one until the reconciler notices.
func TestLongPollOfAFailedSessionClaimsNothing(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: shortLease, HeartbeatInterval: shortBeat}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	doomed := e.register(ctx, "doomed", agentOpts{maxTasks: 5, beat: shortBeat})
	live := e.register(ctx, "live", agentOpts{maxTasks: 5, beat: shortBeat})
	// Warm the queue's view of the doomed session, as a working agent's
	// earlier claims would have.
	if _, err := e.claim(ctx, doomed, 1, 0); err != nil {
		t.Fatal(err)
	}

	type result struct {
		claims []*taskqueuev1.Claim
		err    error
	}
	polled := make(chan result, 1)
	go func() {
		claims, err := e.claim(ctx, doomed, 5, 30*time.Second)
		polled <- result{claims, err}
	}()
	doomed.hb.Stop()
	eventually(t, 10*time.Second, "doomed session failed", func() (bool, error) {
		s, err := e.coordc.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: doomed.id})
		return s.GetSession().GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_FAILED, err
	})
	id := e.enqueue(ctx, newTaskReq("after-failure", "work", 0, "", 0)).GetTaskId()

	select {
	case r := <-polled:
		if len(r.claims) > 0 {
			t.Fatalf("a failed session's long poll was handed %d task(s)", len(r.claims))
		}
		if r.err != nil {
			wantStatus(t, r.err, codes.FailedPrecondition, "")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the failed session's long poll neither returned nor claimed")
	}
	c := e.mustClaim(ctx, live, 1)[0]
	if c.GetTask().GetTaskId() != id || c.GetTask().GetAttempt() != 1 {
		t.Fatalf("live session claimed %s attempt %d", c.GetTask().GetTaskId(), c.GetTask().GetAttempt())
	}
}

// TestFailedSessionCannotSettleItsClaims: once the coordinator has failed a
// session, the queue refuses its settlements even before it has taken the
// claims back (here the queue was down when the session failed, so no
// event told it).
func TestFailedSessionCannotSettleItsClaims(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: shortLease, HeartbeatInterval: shortBeat}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	zombie := e.register(ctx, "zombie", agentOpts{maxTasks: 3, beat: shortBeat})
	for i := range 3 {
		e.enqueue(ctx, newTaskReq(keyOf("z", i), "work", 0, "", i))
	}
	claims := e.mustClaim(ctx, zombie, 3)

	e.q.Stop()
	zombie.hb.Stop()
	eventually(t, 10*time.Second, "zombie session failed", func() (bool, error) {
		s, err := e.coordc.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: zombie.id})
		return s.GetSession().GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_FAILED, err
	})
	e.q.Restart()

	_, err := e.complete(ctx, zombie, claims[0])
	wantStatus(t, err, codes.FailedPrecondition, "")
	_, err = e.fail(ctx, zombie, claims[1], true)
	wantStatus(t, err, codes.FailedPrecondition, "")
	_, err = e.tasks.ExtendClaim(ctx, &taskqueuev1.ExtendClaimRequest{TaskId: claims[2].GetTask().GetTaskId(), ClaimToken: claims[2].GetClaimToken(), SessionId: zombie.id, SessionToken: zombie.token})
	wantStatus(t, err, codes.FailedPrecondition, "")
	for _, c := range claims {
		if st, _ := e.dbTaskState(ctx, c.GetTask().GetTaskId()); st == "completed" || st == "dead" {
			t.Fatalf("task %s settled by a failed session: %s", c.GetTask().GetTaskId(), st)
		}
	}
	// And the claims come back for others.
	eventually(t, 15*time.Second, "zombie's claims requeued", func() (bool, error) {
		var n int
		err := e.db.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE state = 'pending'`).Scan(&n)
		return n == 3, err
	})
}

// TestDeregisteredSessionClaimsComeBackAtOnce: a session that deregisters
// gives its claims back at once (through the session watch, not a lease).
func TestDeregisteredSessionClaimsComeBackAtOnce(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	leaver := e.register(ctx, "leaver", agentOpts{maxTasks: 2})
	for i := range 2 {
		e.enqueue(ctx, newTaskReq(keyOf("leave", i), "work", 0, "", i))
	}
	claims := e.mustClaim(ctx, leaver, 2)
	if _, err := e.coordc.Sessions().DeregisterSession(ctx, &coordinatorv1.DeregisterSessionRequest{SessionId: leaver.id, SessionToken: leaver.token}); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	eventually(t, 5*time.Second, "claims of the deregistered session back", func() (bool, error) {
		var n int
		err := e.db.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE state = 'pending'`).Scan(&n)
		return n == 2, err
	})
	if d := time.Since(left); d > time.Second {
		t.Errorf("claims came back %s after the deregistration", d)
	}
	_, err := e.complete(ctx, leaver, claims[0])
	wantStatus(t, err, codes.FailedPrecondition, "")
	_, err = e.claim(ctx, leaver, 1, 0)
	wantStatus(t, err, codes.FailedPrecondition, "")
}
