package grpctest

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
)

// shutdownTimeout is short because a test's handlers have no business
// outliving it; a leaked stream then costs a second, not ten.
const shutdownTimeout = time.Second

// Serve starts a server with register's services on a loopback port and
// returns a connection to it. When the test ends the connection is closed
// and the server drained; the test fails if the server stopped with an
// error.
func Serve(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	srv := grpcserver.New(grpcserver.Options{
		Name:            t.Name(),
		Logger:          zaptest.NewLogger(t),
		ShutdownTimeout: shutdownTimeout,
	})
	register(srv.GRPC())
	lis := Listen(t)

	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	conn, err := grpcclient.Dial(lis.Addr().String())
	if err != nil {
		stop()
		<-served
		t.Fatalf("grpctest: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		stop()
		if err := <-served; err != nil {
			t.Errorf("grpctest: server stopped with an error: %v", err)
		}
	})
	return conn
}

// Listen returns a listener on a free loopback port, closed when the test
// ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("grpctest: listen on loopback: %v", err)
	}
	t.Cleanup(func() { _ = lis.Close() }) // already closed if a server used it
	return lis
}

// rebindWithin bounds how long Rebind waits for a port to come free.
const rebindWithin = 10 * time.Second

// Rebind calls start until it stops failing with "address already in use",
// for at most ten seconds, and returns its last result. A test kit calls it
// when it restarts a service on the address it had before: between the stop
// and the restart another test's client may have taken that port as its
// ephemeral source port, or a client redialling the stopped service may
// have connected to itself on it (Linux allows a TCP self-connect when the
// source and destination ports collide). Both let go within moments.
func Rebind[T any](start func() (T, error)) (T, error) {
	deadline := time.Now().Add(rebindWithin)
	for {
		v, err := start()
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
