package grpcserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
)

// blockingStreams is a fakeService whose streams stay open until their
// client leaves, reporting each start on started.
func blockingStreams(started chan<- struct{}) *fakeService {
	return &fakeService{
		unary: func(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
			return &testgrpc.SimpleResponse{}, nil
		},
		stream: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
			started <- struct{}{}
			<-ss.Context().Done()
			return nil
		},
	}
}

func openStream(t *testing.T, client testgrpc.TestServiceClient) (testgrpc.TestService_StreamingOutputCallClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st, cancel
}

// TestStreamsPerClientAreCapped: 2,000 WatchSessions streams from one client
// were all accepted (+92 MB, 2,033 descriptors).
func TestStreamsPerClientAreCapped(t *testing.T) {
	started := make(chan struct{}, 10)
	r := start(t, blockingStreams(started), grpcserver.Options{Limits: grpcserver.Limits{MaxStreamsPerClient: 2}})
	_, cancelFirst := openStream(t, r.client)
	openStream(t, r.client)
	<-started
	<-started
	third, _ := openStream(t, r.client)
	_, err := third.Recv()
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "GRPC_MAX_STREAMS_PER_CLIENT") {
		t.Fatalf("third stream: %v, want RESOURCE_EXHAUSTED naming GRPC_MAX_STREAMS_PER_CLIENT", err)
	}
	// Unary calls are not counted.
	if _, err := r.client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("unary call beside two streams: %v", err)
	}
	// A closed stream makes room.
	cancelFirst()
	deadline := time.Now().Add(10 * time.Second)
	for {
		openStream(t, r.client)
		select {
		case <-started:
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no stream was accepted after one of the two closed")
		}
	}
}

// TestUncountedStreamsAreNotCappedPerClient: the coordinator's heartbeats
// arrive many from one address (a follower's relays, the gateway's REST
// heartbeats) and are bounded by the sessions allowed instead.
func TestUncountedStreamsAreNotCappedPerClient(t *testing.T) {
	started := make(chan struct{}, 10)
	r := start(t, blockingStreams(started), grpcserver.Options{Limits: grpcserver.Limits{MaxStreamsPerClient: 1,
		Uncounted: []string{testgrpc.TestService_StreamingOutputCall_FullMethodName}}})
	for range 3 {
		openStream(t, r.client)
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("an uncounted stream was not accepted")
		}
	}
}

// TestConnectionsAreCapped: no server capped its connections.
func TestConnectionsAreCapped(t *testing.T) {
	r := start(t, blockingStreams(make(chan struct{}, 10)), grpcserver.Options{Limits: grpcserver.Limits{MaxConnections: 1}})
	if _, err := r.client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second, err := grpcclient.Dial(r.addr, grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = testgrpc.NewTestServiceClient(second).UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if code := status.Code(err); code != codes.Unavailable {
		t.Fatalf("call on a second connection: %v, want UNAVAILABLE", err)
	}
	// Once the first connection closes, the second gets in.
	r.conn.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := testgrpc.NewTestServiceClient(second).UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("second connection after the first closed: %v", err)
		}
	}
}

// TestConcurrentStreamsPerConnectionAreCapped: HTTP/2's
// MAX_CONCURRENT_STREAMS was unbounded; a call beyond it waits for a slot.
func TestConcurrentStreamsPerConnectionAreCapped(t *testing.T) {
	started := make(chan struct{}, 10)
	r := start(t, blockingStreams(started), grpcserver.Options{Limits: grpcserver.Limits{MaxConcurrentStreams: 1}})
	_, cancelStream := openStream(t, r.client)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := r.client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("second call on the connection while a stream holds its one slot: %v, want it to wait (DEADLINE_EXCEEDED)", err)
	}
	cancelStream()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.client.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("call after the stream closed: %v", err)
	}
}

// TestLimitSettings: the limits are settings; a bad value names its variable.
func TestLimitSettings(t *testing.T) {
	env := map[string]string{"GRPC_MAX_CONNECTIONS": "10", "GRPC_MAX_CONCURRENT_STREAMS": "20", "GRPC_MAX_STREAMS_PER_CLIENT": "30"}
	l := config.NewLoader(func(n string) (string, bool) { v, ok := env[n]; return v, ok })
	if got := grpcserver.LoadLimits(l); l.Err() != nil || got.MaxConnections != 10 || got.MaxConcurrentStreams != 20 || got.MaxStreamsPerClient != 30 {
		t.Fatalf("limits = %+v, %v", got, l.Err())
	}
	for name := range env {
		l := config.NewLoader(func(n string) (string, bool) { return "0", n == name })
		grpcserver.LoadLimits(l)
		if err := l.Err(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=0: %v, want an error naming it", name, err)
		}
	}
}
