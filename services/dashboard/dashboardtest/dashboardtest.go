// Package dashboardtest runs a real dashboard service inside a test process,
// on a PostgreSQL database of the test's, so that it can be stopped and
// restarted mid-test. Feed is a stand-in metrics service that serves only
// WatchFrustrationEvents, from events the test appends, for tests of the
// dashboard alone; end-to-end tests use the real metrics service instead.
package dashboardtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpctest"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	"github.com/gaia-platform/gaia/services/dashboard/service"
)

// Options tune the service. Zero values take the defaults noted.
type Options struct {
	// MetricsAddr is the metrics service (or Feed) to follow.
	MetricsAddr string
	// Disabled sets TEACHER_DASHBOARD_ENABLED=false.
	Disabled bool
	// SubscriberBuffer is DASHBOARD_SUBSCRIBER_BUFFER (default 256).
	SubscriberBuffer int
	// MaxReplyBytes is GRPC_MAX_REPLY_BYTES (default 3 MiB).
	MaxReplyBytes int
	// Quiet logs only warnings and errors.
	Quiet bool
	// Keys sign and verify credentials; nil makes new ones.
	Keys *authtest.Keys
	// CoordinatorAddr is the coordinator the revocation list is polled
	// from (default 127.0.0.1:1, nothing: revocations never arrive); pass
	// Keys of the same cluster.
	CoordinatorAddr string
}

// Dashboard is a running dashboard service.
type Dashboard struct {
	// Keys are the service's keys; AdminToken is the credential the
	// connection presents.
	Keys       *authtest.Keys
	AdminToken string
	t          testing.TB
	cfg        service.Config
	log        *zap.Logger
	// Addr is the gRPC address; PrometheusAddr serves /metrics.
	Addr           string
	PrometheusAddr string
	conn           *grpc.ClientConn

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan error
	running bool
}

// Start runs the service on databaseURL; Cleanup stops it.
func Start(t testing.TB, databaseURL string, opts Options) *Dashboard {
	t.Helper()
	level := zap.InfoLevel
	if opts.Quiet {
		level = zap.WarnLevel
	}
	if opts.Keys == nil {
		opts.Keys = authtest.New(t)
	}
	d := &Dashboard{t: t, log: zaptest.NewLogger(t, zaptest.Level(level)).Named("dashboard"), Keys: opts.Keys, AdminToken: opts.Keys.Admin(t)}
	d.cfg = service.Config{
		ListenAddr:              "127.0.0.1:0",
		PrometheusAddr:          "127.0.0.1:0",
		DatabaseURL:             databaseURL,
		ShutdownTimeout:         2 * time.Second,
		MetricsAddr:             opts.MetricsAddr,
		TeacherDashboardEnabled: !opts.Disabled,
		SubscriberBuffer:        opts.SubscriberBuffer,
		MaxReplyBytes:           opts.MaxReplyBytes,
		CoordinatorAddr:         "127.0.0.1:1",
		Auth:                    opts.Keys.Config(t, opts.Keys.Service(t, "dashboard")),
	}
	if opts.CoordinatorAddr != "" {
		d.cfg.CoordinatorAddr = opts.CoordinatorAddr
	}
	d.start()
	t.Cleanup(func() {
		d.Stop()
		_ = d.conn.Close()
	})
	return d
}

func (d *Dashboard) start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := d.cfg
	if d.Addr != "" {
		cfg.ListenAddr, cfg.PrometheusAddr = d.Addr, d.PrometheusAddr
	}
	// A restart may find its port briefly taken (see grpctest.Rebind).
	svc, err := grpctest.Rebind(func() (*service.Service, error) {
		return service.New(context.Background(), cfg, d.log)
	})
	if err != nil {
		d.t.Fatalf("start dashboard: %v", err)
	}
	d.Addr, d.PrometheusAddr = svc.Addr().String(), svc.PrometheusAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done, d.running = cancel, make(chan error, 1), true
	go func() { d.done <- svc.Run(ctx) }()
	if d.conn == nil {
		if d.conn, err = grpcclient.Dial(d.Addr, grpcclient.WithBearer(d.AdminToken)); err != nil {
			d.t.Fatal(err)
		}
	}
}

// Stop stops the service gracefully.
func (d *Dashboard) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return
	}
	d.cancel()
	if err := <-d.done; err != nil {
		d.t.Errorf("dashboard stopped with an error: %v", err)
	}
	d.running = false
}

// Restart starts a stopped service again on the same address and database.
func (d *Dashboard) Restart() { d.start() }

// Client is a DashboardService client (it reconnects across restarts).
func (d *Dashboard) Client() dashboardv1.DashboardServiceClient {
	return dashboardv1.NewDashboardServiceClient(d.conn)
}

// Conn is the client connection to the service.
func (d *Dashboard) Conn() *grpc.ClientConn { return d.conn }
