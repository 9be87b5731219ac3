package grpctest

import (
	"context"
	"net"
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
