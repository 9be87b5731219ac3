package service_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// TestBadInputIsRefusedWithItsCode sends each kind of bad request through a
// follower and checks its specific code, the field it names, and that the
// state is unchanged afterwards.
func TestBadInputIsRefusedWithItsCode(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{Quiet: true})
	cl := c.Client(c.Followers()[0])
	owner, otok := register(t, cl, "owner")
	other, xtok := register(t, cl, "other")
	lock, err := acquire(ctxT(t, 5*time.Second), cl, "held/key", owner.GetSessionId(), otok, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	sessions, locks := cl.Sessions(), cl.Locks()
	dur := durationpb.New
	cases := []struct {
		name  string
		call  func(ctx context.Context) error
		code  codes.Code
		field string
	}{
		{"empty name", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
			return err
		}, codes.InvalidArgument, "name"},
		{"oversize name", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: strings.Repeat("x", 129), Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
			return err
		}, codes.InvalidArgument, "name"},
		{"name with spaces", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "two words", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
			return err
		}, codes.InvalidArgument, "name"},
		{"missing tier", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "n", Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
			return err
		}, codes.InvalidArgument, "tier"},
		{"unknown provider", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "n", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: 99})
			return err
		}, codes.InvalidArgument, "provider"},
		{"negative capacity", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "n", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: -1})
			return err
		}, codes.InvalidArgument, "max_concurrent_tasks"},
		{"bad time window", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "n", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
				TimeWindows: []*typev1.TimeWindow{{StartMinute: 60, EndMinute: 2000}}})
			return err
		}, codes.InvalidArgument, "time_windows[0]"},
		{"live name again", func(ctx context.Context) error {
			_, err := sessions.RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "owner", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
			return err
		}, codes.AlreadyExists, ""},
		{"unknown session", func(ctx context.Context) error {
			_, err := sessions.GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: "00000000-0000-4000-8000-000000000000"})
			return err
		}, codes.NotFound, ""},
		{"wrong token on deregister", func(ctx context.Context) error {
			_, err := sessions.DeregisterSession(ctx, &coordinatorv1.DeregisterSessionRequest{SessionId: owner.GetSessionId(), SessionToken: "nope"})
			return err
		}, codes.Unauthenticated, ""},
		{"verify with a wrong token", func(ctx context.Context) error {
			_, err := sessions.VerifySession(ctx, &coordinatorv1.VerifySessionRequest{SessionId: owner.GetSessionId(), SessionToken: xtok})
			return err
		}, codes.Unauthenticated, ""},
		{"verify without a token", func(ctx context.Context) error {
			_, err := sessions.VerifySession(ctx, &coordinatorv1.VerifySessionRequest{SessionId: owner.GetSessionId()})
			return err
		}, codes.InvalidArgument, "session_token"},
		{"empty lock key", func(ctx context.Context) error {
			_, err := acquire(ctx, cl, "", owner.GetSessionId(), otok, time.Minute, 0)
			return err
		}, codes.InvalidArgument, "key"},
		{"oversize lock key", func(ctx context.Context) error {
			_, err := acquire(ctx, cl, strings.Repeat("k", 513), owner.GetSessionId(), otok, time.Minute, 0)
			return err
		}, codes.InvalidArgument, "key"},
		{"zero ttl", func(ctx context.Context) error {
			_, err := locks.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{Key: "k", SessionId: owner.GetSessionId(), SessionToken: otok, Ttl: dur(0)})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"negative ttl", func(ctx context.Context) error {
			_, err := locks.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{Key: "k", SessionId: owner.GetSessionId(), SessionToken: otok, Ttl: dur(-time.Second)})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"missing ttl", func(ctx context.Context) error {
			_, err := locks.AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{Key: "k", SessionId: owner.GetSessionId(), SessionToken: otok})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"acquire for an unknown session", func(ctx context.Context) error {
			_, err := acquire(ctx, cl, "k", "00000000-0000-4000-8000-000000000000", otok, time.Minute, 0)
			return err
		}, codes.NotFound, ""},
		{"acquire with a wrong token", func(ctx context.Context) error {
			_, err := acquire(ctx, cl, "k", owner.GetSessionId(), xtok, time.Minute, 0)
			return err
		}, codes.Unauthenticated, ""},
		{"acquire a held lock without waiting", func(ctx context.Context) error {
			_, err := acquire(ctx, cl, "held/key", other.GetSessionId(), xtok, time.Minute, 0)
			return err
		}, codes.Aborted, ""},
		{"acquire a held lock, waiting in vain", func(ctx context.Context) error {
			_, err := acquire(ctx, cl, "held/key", other.GetSessionId(), xtok, time.Minute, 200*time.Millisecond)
			return err
		}, codes.DeadlineExceeded, ""},
		{"release by another session", func(ctx context.Context) error {
			_, err := locks.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{Key: "held/key", SessionId: other.GetSessionId(), SessionToken: xtok, FencingToken: lock.GetFencingToken()})
			return err
		}, codes.PermissionDenied, ""},
		{"release with a stale fencing token", func(ctx context.Context) error {
			_, err := locks.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{Key: "held/key", SessionId: owner.GetSessionId(), SessionToken: otok, FencingToken: lock.GetFencingToken() - 1})
			return err
		}, codes.FailedPrecondition, ""},
		{"renew with a stale fencing token", func(ctx context.Context) error {
			_, err := locks.RenewLock(ctx, &coordinatorv1.RenewLockRequest{Key: "held/key", SessionId: owner.GetSessionId(), SessionToken: otok, FencingToken: lock.GetFencingToken() + 1})
			return err
		}, codes.FailedPrecondition, ""},
		{"renew without a fencing token", func(ctx context.Context) error {
			_, err := locks.RenewLock(ctx, &coordinatorv1.RenewLockRequest{Key: "held/key", SessionId: owner.GetSessionId(), SessionToken: otok})
			return err
		}, codes.InvalidArgument, "fencing_token"},
		{"release a free lock", func(ctx context.Context) error {
			_, err := locks.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{Key: "free/key", SessionId: owner.GetSessionId(), SessionToken: otok, FencingToken: 1})
			return err
		}, codes.NotFound, ""},
		// A beat reporting -2,147,483,648 tasks was accepted, and the
		// session showed as available.
		{"heartbeat with a negative task count", func(ctx context.Context) error {
			stream, err := sessions.Heartbeat(ctx)
			if err != nil {
				return err
			}
			if err := stream.Send(&coordinatorv1.HeartbeatRequest{SessionId: owner.GetSessionId(), SessionToken: otok, CurrentTaskCount: math.MinInt32}); err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}, codes.InvalidArgument, "current_task_count"},
		{"list sessions by an oversize label", func(ctx context.Context) error {
			_, err := sessions.ListSessions(ctx, &coordinatorv1.ListSessionsRequest{Labels: map[string]string{"team": strings.Repeat("v", 257)}})
			return err
		}, codes.InvalidArgument, "labels"},
		{"bad page token", func(ctx context.Context) error {
			_, err := sessions.ListSessions(ctx, &coordinatorv1.ListSessionsRequest{PageToken: "%%%"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"page size too large", func(ctx context.Context) error {
			_, err := locks.ListLocks(ctx, &coordinatorv1.ListLocksRequest{PageSize: 5000})
			return err
		}, codes.InvalidArgument, "page_size"},
		{"cluster change with a forged credential", func(ctx context.Context) error {
			_, err := c.Client(c.Nodes[0]).Cluster().RemoveServer(metadata.NewOutgoingContext(ctx, metadata.Pairs("authorization", "Bearer wrong")), &coordinatorv1.RemoveServerRequest{NodeId: "node-3"})
			return err
		}, codes.Unauthenticated, ""},
		{"cluster change with an operator credential", func(ctx context.Context) error {
			op := c.Keys.Token(t, auth.Spec{Role: auth.RoleOperator, TTL: time.Hour})
			_, err := c.ClientAs(op, c.Nodes[0]).Cluster().RemoveServer(ctx, &coordinatorv1.RemoveServerRequest{NodeId: "node-3"})
			return err
		}, codes.PermissionDenied, ""},
		{"remove an unknown node", func(ctx context.Context) error {
			_, err := c.Client(c.Nodes[0]).Cluster().RemoveServer(ctx, &coordinatorv1.RemoveServerRequest{NodeId: "node-9"})
			return err
		}, codes.NotFound, ""},
	}
	before := snapshotState(t, cl)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctxT(t, 10*time.Second))
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tc.code)
			}
			if tc.field == "" {
				return
			}
			if !strings.Contains(st.Message(), tc.field) {
				t.Errorf("message %q does not name %s", st.Message(), tc.field)
			}
			found := false
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, v := range br.GetFieldViolations() {
						found = found || v.GetField() == tc.field
					}
				}
			}
			if !found {
				t.Errorf("no BadRequest field violation for %s in %v", tc.field, st.Details())
			}
		})
	}
	if after := snapshotState(t, cl); after != before {
		t.Fatalf("bad requests changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshotState summarises sessions and locks as a string for comparison.
func snapshotState(t *testing.T, cl interface {
	Sessions() coordinatorv1.SessionServiceClient
	Locks() coordinatorv1.LockServiceClient
}) string {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	ss, err := cl.Sessions().ListSessions(ctx, &coordinatorv1.ListSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := cl.Locks().ListLocks(ctx, &coordinatorv1.ListLocksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range ss.GetSessions() {
		b.WriteString(s.GetName() + ":" + s.GetStatus().String() + " ")
	}
	for _, l := range ls.GetLocks() {
		b.WriteString(l.GetKey() + "@" + l.GetOwnerSessionName() + " ")
	}
	return b.String()
}
