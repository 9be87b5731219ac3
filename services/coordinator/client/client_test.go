package client

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

func TestNewRejectsBadAddresses(t *testing.T) {
	for _, addrs := range [][]string{nil, {}, {"no-port"}, {":7001"}, {"127.0.0.1:7001", "host"}} {
		if c, err := New(Options{Addrs: addrs}); err == nil {
			_ = c.Close()
			t.Errorf("New(%q) = nil error, want one", addrs)
		}
	}
}

func TestUnaryCallIsRetriedWhileUnavailable(t *testing.T) {
	var calls atomic.Int32
	fake := &fakeSessions{getSession: func(ctx context.Context, req *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
		if calls.Add(1) <= 3 {
			_ = grpc.SetTrailer(ctx, metadata.Pairs(grpcclient.LeaderTrailer, "10.0.0.2:7001"))
			return nil, status.Error(codes.Unavailable, "no leader elected yet")
		}
		return &coordinatorv1.GetSessionResponse{Session: &coordinatorv1.Session{SessionId: req.GetSessionId()}}, nil
	}}
	addr, _ := startServer(t, fake, nil)
	core, logs := observer.New(zapcore.DebugLevel)
	c := newTestClient(t, Options{Addrs: []string{addr}, Logger: zap.New(core)})

	resp, err := c.Sessions().GetSession(testContext(t), &coordinatorv1.GetSessionRequest{SessionId: "s-1"})
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if resp.GetSession().GetSessionId() != "s-1" {
		t.Errorf("session id = %q, want s-1", resp.GetSession().GetSessionId())
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("server saw %d calls, want 4 (3 UNAVAILABLE, then success)", n)
	}
	retries := logs.FilterMessage("coordinator unavailable, retrying call").All()
	if len(retries) != 3 {
		t.Fatalf("logged %d retries, want 3", len(retries))
	}
	if hint := retries[0].ContextMap()["leader_hint"]; !slices.Equal(toStrings(hint), []string{"10.0.0.2:7001"}) {
		t.Errorf("leader_hint = %v, want the gaia-leader trailer", hint)
	}
}

func toStrings(v any) []string {
	var out []string
	if vs, ok := v.([]any); ok {
		for _, s := range vs {
			out = append(out, s.(string))
		}
	}
	return out
}

func TestUnaryCallIsNotRetriedOnOtherCodes(t *testing.T) {
	for _, code := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.Internal, codes.Aborted, codes.DeadlineExceeded, codes.PermissionDenied} {
		t.Run(code.String(), func(t *testing.T) {
			var calls atomic.Int32
			fake := &fakeSessions{getSession: func(context.Context, *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
				calls.Add(1)
				return nil, status.Error(code, "scripted")
			}}
			addr, _ := startServer(t, fake, nil)
			c := newTestClient(t, Options{Addrs: []string{addr}})

			_, err := c.Sessions().GetSession(testContext(t), &coordinatorv1.GetSessionRequest{SessionId: "s-1"})
			if got := status.Code(err); got != code {
				t.Errorf("code = %v, want %v", got, code)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("server saw %d calls, want 1", n)
			}
		})
	}
}

func TestUnaryRetryStopsAtTheDeadline(t *testing.T) {
	var calls atomic.Int32
	fake := &fakeSessions{getSession: func(context.Context, *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
		calls.Add(1)
		return nil, status.Error(codes.Unavailable, "no leader elected yet")
	}}
	addr, _ := startServer(t, fake, nil)
	c := newTestClient(t, Options{Addrs: []string{addr}})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: "s-1"})
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "no leader elected yet" {
		t.Errorf("err = %v, want the server's last UNAVAILABLE", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("gave up after %v, want about the 300ms deadline", elapsed)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("server saw %d calls, want retries", n)
	}
}

func TestTokenReachesEveryCall(t *testing.T) {
	rec := &authRecorder{}
	fake := &fakeSessions{
		getSession: func(context.Context, *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
			return &coordinatorv1.GetSessionResponse{}, nil
		},
		watchSessions: func(*coordinatorv1.WatchSessionsRequest, grpc.ServerStreamingServer[coordinatorv1.WatchSessionsResponse]) error {
			return status.Error(codes.PermissionDenied, "scripted")
		},
	}
	addr, _ := startServer(t, fake, fakeCluster{}, rec.serverOptions()...)
	ctx := testContext(t)

	c := newTestClient(t, Options{Addrs: []string{addr}, Token: "s3cret"})
	if _, err := c.Cluster().GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{}); err != nil {
		t.Fatalf("GetClusterStatus: %v", err)
	}
	if _, err := c.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: "s-1"}); err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	_, _ = c.Locks().GetLock(ctx, &coordinatorv1.GetLockRequest{Key: "k"})
	_ = c.WatchSessions(ctx, nil, func(*coordinatorv1.SessionEvent) error { return nil })

	for _, m := range []string{coordinatorv1.ClusterService_GetClusterStatus_FullMethodName, coordinatorv1.SessionService_GetSession_FullMethodName, coordinatorv1.LockService_GetLock_FullMethodName, coordinatorv1.SessionService_WatchSessions_FullMethodName} {
		got, called := rec.get(m)
		if !called {
			t.Errorf("%s was not called", m)
		}
		if !slices.Equal(got, []string{"Bearer s3cret"}) {
			t.Errorf("%s authorization = %q, want the bearer token", m, got)
		}
	}

	// Without a token nothing is sent, not even an empty bearer.
	plain := newTestClient(t, Options{Addrs: []string{addr}})
	if _, err := plain.Cluster().GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{}); err != nil {
		t.Fatalf("GetClusterStatus: %v", err)
	}
	if got, _ := rec.get(coordinatorv1.ClusterService_GetClusterStatus_FullMethodName); len(got) != 0 {
		t.Errorf("authorization without a token = %q, want none", got)
	}
}

func TestFailoverToTheOtherAddressWhenOneServerStops(t *testing.T) {
	named := func(name string) *fakeSessions {
		return &fakeSessions{getSession: func(context.Context, *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
			return &coordinatorv1.GetSessionResponse{Session: &coordinatorv1.Session{Name: name}}, nil
		}}
	}
	addrA, serverA := startServer(t, named("a"), nil)
	addrB, _ := startServer(t, named("b"), nil)
	c := newTestClient(t, Options{Addrs: []string{addrA, addrB}})
	ctx := testContext(t)

	// Both nodes take calls while both are up.
	seen := map[string]bool{}
	for i := 0; i < 100 && len(seen) < 2; i++ {
		resp, err := c.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: "s"})
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		seen[resp.GetSession().GetName()] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("answered by %v, want both nodes", seen)
	}

	serverA.Stop()
	for i := range 20 {
		resp, err := c.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: "s"})
		if err != nil {
			t.Fatalf("call %d after stopping a: %v", i, err)
		}
		if name := resp.GetSession().GetName(); name != "b" {
			t.Fatalf("call %d answered by %q after a stopped, want b", i, name)
		}
	}
}

// watchPlan scripts one WatchSessions stream: send up to n events after the
// requested index, then end with end (block until the client leaves when
// block is set).
type watchPlan struct {
	n     int
	end   error
	block bool
}

func TestWatchSessionsResumesAfterDroppedStreamsWithoutGapsOrDuplicates(t *testing.T) {
	all := []uint64{3, 4, 7, 8, 11, 12, 20}
	plans := []watchPlan{
		{n: 2, end: status.Error(codes.Unavailable, "server is shutting down")},
		{n: 2, end: nil}, // the server ends the stream with OK: the client still wants more
		{n: 1, end: status.Error(codes.Canceled, "context canceled")},
		{n: 0, end: status.Error(codes.Internal, "internal error")},
		{n: 100, block: true},
	}
	type request struct {
		afterIndex uint64
		types      []coordinatorv1.SessionEventType
	}
	requests := make(chan request, len(plans)+1)
	var conn atomic.Int32
	fake := &fakeSessions{watchSessions: func(req *coordinatorv1.WatchSessionsRequest, stream grpc.ServerStreamingServer[coordinatorv1.WatchSessionsResponse]) error {
		requests <- request{req.GetAfterIndex(), req.GetTypes()}
		k := int(conn.Add(1)) - 1
		if k >= len(plans) {
			return status.Error(codes.Internal, "unscripted reconnect")
		}
		p := plans[k]
		sent := 0
		for _, idx := range all {
			if idx <= req.GetAfterIndex() || sent == p.n {
				continue
			}
			ev := &coordinatorv1.SessionEvent{Index: idx, Type: coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED}
			if err := stream.Send(&coordinatorv1.WatchSessionsResponse{Event: ev}); err != nil {
				return err
			}
			sent++
		}
		if p.block {
			<-stream.Context().Done()
			return nil
		}
		return p.end
	}}
	addr, _ := startServer(t, fake, nil)
	c := newTestClient(t, Options{Addrs: []string{addr}})

	types := []coordinatorv1.SessionEventType{coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED}
	errAllSeen := errors.New("all events seen")
	var got []uint64
	err := c.WatchSessions(testContext(t), &coordinatorv1.WatchSessionsRequest{Types: types}, func(ev *coordinatorv1.SessionEvent) error {
		got = append(got, ev.GetIndex())
		if len(got) == len(all) {
			return errAllSeen
		}
		return nil
	})
	if !errors.Is(err, errAllSeen) {
		t.Fatalf("WatchSessions = %v, want fn's error", err)
	}
	if !slices.Equal(got, all) {
		t.Errorf("delivered indexes %v, want %v", got, all)
	}
	close(requests)
	var afters []uint64
	for r := range requests {
		afters = append(afters, r.afterIndex)
		if !slices.Equal(r.types, types) {
			t.Errorf("reconnect after %d asked for types %v, want %v", r.afterIndex, r.types, types)
		}
	}
	if want := []uint64{0, 4, 8, 11, 11}; !slices.Equal(afters, want) {
		t.Errorf("after_index per connection = %v, want %v", afters, want)
	}
}

func TestWatchSessionsSkipsAnEventTheServerRepeats(t *testing.T) {
	fake := &fakeSessions{watchSessions: func(req *coordinatorv1.WatchSessionsRequest, stream grpc.ServerStreamingServer[coordinatorv1.WatchSessionsResponse]) error {
		for _, idx := range []uint64{5, 5, 4, 6} {
			_ = stream.Send(&coordinatorv1.WatchSessionsResponse{Event: &coordinatorv1.SessionEvent{Index: idx}})
		}
		<-stream.Context().Done()
		return nil
	}}
	addr, _ := startServer(t, fake, nil)
	c := newTestClient(t, Options{Addrs: []string{addr}})

	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var got []uint64
	err := c.WatchSessions(ctx, &coordinatorv1.WatchSessionsRequest{AfterIndex: 2}, func(ev *coordinatorv1.SessionEvent) error {
		got = append(got, ev.GetIndex())
		if ev.GetIndex() == 6 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WatchSessions after ctx end = %v, want nil", err)
	}
	if want := []uint64{5, 6}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestWatchSessionsStopsOnPermanentErrors(t *testing.T) {
	for _, code := range []codes.Code{codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated} {
		t.Run(code.String(), func(t *testing.T) {
			var calls atomic.Int32
			fake := &fakeSessions{watchSessions: func(*coordinatorv1.WatchSessionsRequest, grpc.ServerStreamingServer[coordinatorv1.WatchSessionsResponse]) error {
				calls.Add(1)
				return status.Error(code, "scripted")
			}}
			addr, _ := startServer(t, fake, nil)
			c := newTestClient(t, Options{Addrs: []string{addr}})

			err := c.WatchSessions(testContext(t), nil, func(*coordinatorv1.SessionEvent) error { return nil })
			if status.Code(err) != code {
				t.Errorf("WatchSessions = %v, want %v", err, code)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("server saw %d watches, want 1", n)
			}
		})
	}
}

func TestWatchSessionsEndsWhenTheClientIsClosed(t *testing.T) {
	delivered := make(chan struct{})
	fake := &fakeSessions{watchSessions: func(_ *coordinatorv1.WatchSessionsRequest, stream grpc.ServerStreamingServer[coordinatorv1.WatchSessionsResponse]) error {
		_ = stream.Send(&coordinatorv1.WatchSessionsResponse{Event: &coordinatorv1.SessionEvent{Index: 1}})
		<-stream.Context().Done()
		return nil
	}}
	addr, _ := startServer(t, fake, nil)
	c := newTestClient(t, Options{Addrs: []string{addr}})

	errc := make(chan error, 1)
	go func() {
		errc <- c.WatchSessions(testContext(t), nil, func(*coordinatorv1.SessionEvent) error {
			close(delivered)
			return nil
		})
	}()
	receive(t, delivered, "the first event")
	_ = c.Close()
	if err := receive(t, errc, "WatchSessions to return"); status.Code(err) != codes.Canceled {
		t.Errorf("WatchSessions after Close = %v, want CANCELED", err)
	}
}
