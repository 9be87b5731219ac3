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
