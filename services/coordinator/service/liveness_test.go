package service_test

import (
	"context"
	"testing"
	"time"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// TestSessionStaysActiveAcrossFailoverBeforeItsFirstBeat is the regression
// test for two definitions of "live" that disagreed: right after a failover
// the new leader re-arms every lease with the failover grace, so its sweeper
// counts a healthy session as live, but GetSession judged "active" by the
// last beat committed to the log, which for a session that has beaten
// steadily is its first beat, long past the lease. Such a session read as
// inactive and unavailable (and so could claim no task) until its next beat
// reached the new leader. Now the lease is the one answer.
func TestSessionStaysActiveAcrossFailoverBeforeItsFirstBeat(t *testing.T) {
	const lease = time.Second
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: lease, HeartbeatInterval: 100 * time.Millisecond, FailoverGrace: 30 * time.Second, Quiet: true})
	cl := c.Client()
	s, tok := register(t, cl, "steady")
	h := cl.StartHeartbeat(context.Background(), s.GetSessionId(), tok, 100*time.Millisecond, nil)
	defer h.Stop()

	get := func() *coordinatorv1.Session {
		t.Helper()
		r, err := cl.Sessions().GetSession(ctxT(t, 5*time.Second), &coordinatorv1.GetSessionRequest{SessionId: s.GetSessionId()})
		if err != nil {
			t.Fatalf("get session: %v", err)
		}
		return r.GetSession()
	}
	waitFor(t, 5*time.Second, "session never became active", func() bool {
		return get().GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE
	})
	// Beat for two leases, so that the beat the log holds (the first) is
	// older than a lease.
	activeAt := time.Now()
	waitFor(t, 10*time.Second, "clock stalled", func() bool { return time.Since(activeAt) > 2*lease })
	if v := get(); !v.GetActive() || !v.GetAvailable() {
		t.Fatalf("beating session before the failover: active %v, available %v", v.GetActive(), v.GetAvailable())
	}

	// Stop beating and fail over at once: the new leader sees no beat.
	h.Stop()
	c.Kill(c.Leader())
	c.Leader()
	v := get()
	if !v.GetActive() || !v.GetAvailable() {
		t.Errorf("after the failover, within the grace: active %v, available %v; want both (the lease runs until %v)",
			v.GetActive(), v.GetAvailable(), v.GetLeaseExpiresAt().AsTime())
	}
	if v.GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_FAILED {
		t.Errorf("session failed across the failover")
	}
}

// TestDeregisteredSessionKeepsItsLastHeartbeat is the regression test for a
// deregistered session whose last_heartbeat_at showed its first beat (the one
// the log held since it became active), seconds older than its last:
// DeregisterSession committed the transition with no beat time at all.
func TestDeregisteredSessionKeepsItsLastHeartbeat(t *testing.T) {
	c := coordtest.Start(t, 1, coordtest.Options{LeaseTimeout: 5 * time.Second, HeartbeatInterval: 50 * time.Millisecond, Quiet: true})
	cl := c.Client()
	s, tok := register(t, cl, "leaving")
	h := cl.StartHeartbeat(context.Background(), s.GetSessionId(), tok, 50*time.Millisecond, nil)
	defer h.Stop()

	get := func() *coordinatorv1.Session {
		t.Helper()
		r, err := cl.Sessions().GetSession(ctxT(t, 5*time.Second), &coordinatorv1.GetSessionRequest{SessionId: s.GetSessionId()})
		if err != nil {
			t.Fatalf("get session: %v", err)
		}
		return r.GetSession()
	}
	waitFor(t, 5*time.Second, "session never became active", func() bool {
		return get().GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE
	})
	first := get().GetLastHeartbeatAt().AsTime()
	// Beat on until the leader has seen a beat well after the first.
	var last time.Time
	waitFor(t, 10*time.Second, "no later beat reached the leader", func() bool {
		last = get().GetLastHeartbeatAt().AsTime()
		return last.Sub(first) > 300*time.Millisecond
	})
	h.Stop()
	last = get().GetLastHeartbeatAt().AsTime()

	resp, err := cl.Sessions().DeregisterSession(ctxT(t, 5*time.Second), &coordinatorv1.DeregisterSessionRequest{SessionId: s.GetSessionId(), SessionToken: tok})
	if err != nil {
		t.Fatalf("deregister: %v", err)
	}
	if got := resp.GetSession().GetLastHeartbeatAt().AsTime(); !got.Equal(last) {
		t.Errorf("DeregisterSession answered last_heartbeat_at %v, want the last beat %v (the first was %v)", got, last, first)
	}
	if got := get().GetLastHeartbeatAt().AsTime(); !got.Equal(last) {
		t.Errorf("deregistered session shows last_heartbeat_at %v, want the last beat %v (the first was %v)", got, last, first)
	}
}
