package service_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// TestCutOffLeaderAcknowledgesNoBeat cuts the leader off from its
// followers between two beats of a stream it serves. Its next answer must not
// be an ack: only a leader a quorum confirms after the beat arrived may
// promise a lease (regression: a leader frozen past an election acked, on
// waking, beats of a session the new leader had already failed, because the
// ack checked only its cached idea of leading). The stream ends UNAVAILABLE
// instead, and the session, beating through the majority, stays active.
func TestCutOffLeaderAcknowledgesNoBeat(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true, LeaseTimeout: 5 * time.Second, HeartbeatInterval: 500 * time.Millisecond})
	s, tok := register(t, c.Client(), "beater")
	old := c.Leader()

	stream, err := c.Client(old).Sessions().Heartbeat(ctxT(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	beat := &coordinatorv1.HeartbeatRequest{SessionId: s.GetSessionId(), SessionToken: tok}
	if err := stream.Send(beat); err != nil {
		t.Fatal(err)
	}
	if ack, err := stream.Recv(); err != nil || ack.GetLeader().GetNodeId() != old.ID {
		t.Fatalf("first beat: %v, %v; want an ack from the leader %s", ack, err, old.ID)
	}

	c.Isolate(old)
	cut := time.Now()
	if err := stream.Send(beat); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	ack, err := stream.Recv()
	switch {
	case err == nil && ack.GetLeader().GetNodeId() == old.ID:
		t.Fatalf("the cut-off leader acked a beat %s after losing its quorum, lease until %s", time.Since(cut), ack.GetLeaseExpiresAt().AsTime())
	case err == nil:
		t.Fatalf("the cut-off node relayed an ack from %s, which it cannot reach", ack.GetLeader().GetNodeId())
	case status.Code(err) != codes.Unavailable:
		t.Fatalf("the cut-off leader ended the stream with %v, want UNAVAILABLE (reconnect elsewhere)", err)
	}
	t.Logf("cut-off leader answered after %s: %v", time.Since(cut), err)

	// Through the majority the session beats on and stays active.
	majority := c.Client(c.Nodes[indexOtherThan(c, old)])
	waitFor(t, 10*time.Second, "no ack through the majority", func() bool {
		st, err := majority.Sessions().Heartbeat(ctxT(t, 5*time.Second))
		if err != nil || st.Send(beat) != nil {
			return false
		}
		ack, err := st.Recv()
		_ = st.CloseSend()
		return err == nil && ack.GetStatus() == coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE && ack.GetLeader().GetNodeId() != old.ID
	})
	c.Heal()
	c.WaitConverged()
}

// TestRelayedHeartbeatStreamSurvivesTheLeadersDeath beats through a follower
// on a plain gRPC stream, with no reconnect logic on the client's side (as
// grpcurl or any generated client has), while the leader is killed. Every
// beat is answered on the same stream, the later ones by the new leader
// (regression: the relay ended the client's stream with UNAVAILABLE "leader
// ended the heartbeat relay" on every leader change, though its comment
// promised the stream would survive).
func TestRelayedHeartbeatStreamSurvivesTheLeadersDeath(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true, LeaseTimeout: 5 * time.Second, HeartbeatInterval: 2 * time.Second})
	s, tok := register(t, c.Client(), "beater")
	old := c.Leader()
	via := c.Nodes[indexOtherThan(c, old)]
	stream, err := c.Client(via).Sessions().Heartbeat(ctxT(t, 60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	beat := func() *coordinatorv1.HeartbeatResponse {
		t.Helper()
		if err := stream.Send(&coordinatorv1.HeartbeatRequest{SessionId: s.GetSessionId(), SessionToken: tok}); err != nil {
			t.Fatalf("send: %v", err)
		}
		ack, err := stream.Recv()
		if err != nil {
			t.Fatalf("the relayed stream ended: %v", err)
		}
		return ack
	}
	if ack := beat(); ack.GetLeader().GetNodeId() != old.ID {
		t.Fatalf("first ack from %s, want the leader %s", ack.GetLeader().GetNodeId(), old.ID)
	}
	c.Kill(old)
	killed := time.Now()
	// Beats go on on the same stream until the new leader answers one.
	for {
		ack := beat()
		if id := ack.GetLeader().GetNodeId(); id != old.ID {
			if ack.GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE {
				t.Fatalf("new leader %s says the session is %v", id, ack.GetStatus())
			}
			t.Logf("new leader %s acked on the same stream %s after the kill", id, time.Since(killed).Round(time.Millisecond))
			break
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatal("no ack from a new leader within 20s")
		}
	}
}
