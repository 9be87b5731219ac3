package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcserver"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// TestWatchStreamsPerClientAreCappedButHeartbeatsAreNot: 2,000
// WatchSessions streams from one client were all accepted. Watches are now
// capped per client; heartbeats, which a follower relays to the leader many
// from one address, are not.
func TestWatchStreamsPerClientAreCappedButHeartbeatsAreNot(t *testing.T) {
	const perClient = 2
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: time.Second, HeartbeatInterval: 100 * time.Millisecond, Quiet: true,
		GRPCLimits: grpcserver.Limits{MaxStreamsPerClient: perClient}})
	follower := c.Client(c.Followers()[0])

	// Twice the cap of sessions beat through one follower, whose relays
	// reach the leader from one address.
	var ids []string
	for _, name := range []string{"b1", "b2", "b3", "b4"} {
		s, tok := register(t, follower, name)
		h := follower.StartHeartbeat(context.Background(), s.GetSessionId(), tok, 100*time.Millisecond, nil)
		t.Cleanup(h.Stop)
		ids = append(ids, s.GetSessionId())
	}
	time.Sleep(2500 * time.Millisecond) // more than two leases
	for _, id := range ids {
		r, err := follower.Sessions().GetSession(ctxT(t, 5*time.Second), &coordinatorv1.GetSessionRequest{SessionId: id})
		if err != nil || r.GetSession().GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE {
			t.Fatalf("session %s after beating through a follower for two leases: %v, %v; want ACTIVE", id, r.GetSession().GetStatus(), err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch := func() error {
		st, err := follower.Sessions().WatchSessions(ctx, &coordinatorv1.WatchSessionsRequest{})
		if err != nil {
			return err
		}
		_, err = st.Recv() // the snapshot's first event, or the refusal
		return err
	}
	for i := range perClient {
		if err := watch(); err != nil {
			t.Fatalf("watch %d: %v", i+1, err)
		}
	}
	if err := watch(); status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "GRPC_MAX_STREAMS_PER_CLIENT") {
		t.Fatalf("watch %d: %v, want RESOURCE_EXHAUSTED naming GRPC_MAX_STREAMS_PER_CLIENT", perClient+1, err)
	}
}
