// Package metricstest runs a real metrics service inside a test process, on a
// PostgreSQL database of the test's, so that it can be stopped and restarted
// mid-test and several replicas can share one database. Other services' tests
// use it for an in-process metrics service.
package metricstest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpctest"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/service"
)

// Options tune the service. Zero values take the defaults noted.
type Options struct {
	Retention time.Duration // default 720h
	MaxBatch  int           // default 5000
	// Disabled sets USABILITY_METRICS_ENABLED=false.
	Disabled bool
	// Quiet logs only warnings and errors.
	Quiet bool
	// Detection runs the frustration detector against a coordinator; nil
	// leaves it off.
	Detection *Detection
	// DashboardAddr is the dashboard service asked for teachers'
	// classrooms (default 127.0.0.1:1, nothing: teachers' classroom calls
	// answer UNAVAILABLE); TeacherClassroomsTTL defaults to 5 s.
	DashboardAddr        string
	TeacherClassroomsTTL time.Duration
	// Keys sign and verify credentials; nil makes new ones (pass the
	// coordinator's, coordtest.Cluster.Keys, when there is one: Detection
	// needs them).
	Keys *authtest.Keys
	// CoordinatorAddr is the coordinator the revocation list is polled
	// from, for a test without Detection (default 127.0.0.1:1, nothing:
	// revocations never arrive). Detection's addresses win when set.
	CoordinatorAddr string
	// Writers and RollupInterval set the group committer's writers and
	// the rollups' step interval (zero: the service's defaults).
	Writers        int
	RollupInterval time.Duration
}

// Detection configures the detector of a test service.
type Detection struct {
	// CoordinatorAddrs are the coordinator's gRPC addresses.
	CoordinatorAddrs []string
	// Partitions defaults to 16, LockTTL to 2 s.
	Partitions int
	LockTTL    time.Duration
}

// Metrics is a running metrics service.
type Metrics struct {
	t   testing.TB
	cfg service.Config
	log *zap.Logger
	// Addr is the gRPC address; PrometheusAddr serves /metrics.
	Addr           string
	PrometheusAddr string
	// Keys are the service's keys; AdminToken is the credential Conn
	// presents.
	Keys       *authtest.Keys
	AdminToken string
	conn       *grpc.ClientConn

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan error
	running bool
}

// Start runs the service on databaseURL; Cleanup stops it.
func Start(t testing.TB, databaseURL string, opts Options) *Metrics {
	t.Helper()
	if opts.Retention == 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 5000
	}
	level := zap.InfoLevel
	if opts.Quiet {
		level = zap.WarnLevel
	}
	if opts.Keys == nil {
		opts.Keys = authtest.New(t)
	}
	m := &Metrics{t: t, log: zaptest.NewLogger(t, zaptest.Level(level)).Named("metrics"), Keys: opts.Keys, AdminToken: opts.Keys.Admin(t)}
	m.cfg = service.Config{
		ListenAddr:              "127.0.0.1:0",
		PrometheusAddr:          "127.0.0.1:0",
		DatabaseURL:             databaseURL,
		ShutdownTimeout:         2 * time.Second,
		CoordinatorAddr:         "127.0.0.1:1",
		DashboardAddr:           opts.DashboardAddr,
		TeacherClassroomsTTL:    opts.TeacherClassroomsTTL,
		UsabilityMetricsEnabled: !opts.Disabled,
		MaxBatch:                opts.MaxBatch,
		Retention:               opts.Retention,
		PartitionInterval:       time.Hour,
		Auth:                    opts.Keys.Config(t, opts.Keys.Service(t, "metrics")),
		GroupCommitWriters:      opts.Writers,
		RollupInterval:          opts.RollupInterval,
	}
	if opts.CoordinatorAddr != "" {
		m.cfg.CoordinatorAddr = opts.CoordinatorAddr
	}
	if d := opts.Detection; d != nil {
		m.cfg.FrustrationDetectionEnabled = true
		m.cfg.CoordinatorAddr = strings.Join(d.CoordinatorAddrs, ",")
		m.cfg.DetectionPartitions = d.Partitions
		if m.cfg.DetectionPartitions == 0 {
			m.cfg.DetectionPartitions = 16
		}
		m.cfg.DetectionLockTTL = d.LockTTL
		if m.cfg.DetectionLockTTL == 0 {
			m.cfg.DetectionLockTTL = 2 * time.Second
		}
	}
	if m.cfg.DashboardAddr == "" {
		m.cfg.DashboardAddr = "127.0.0.1:1"
	}
	m.start()
	t.Cleanup(func() {
		m.Stop()
		_ = m.conn.Close()
	})
	return m
}

func (m *Metrics) start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg := m.cfg
	if m.Addr != "" {
		cfg.ListenAddr, cfg.PrometheusAddr = m.Addr, m.PrometheusAddr
	}
	// A restart may find its port briefly taken (see grpctest.Rebind).
	svc, err := grpctest.Rebind(func() (*service.Service, error) {
		return service.New(context.Background(), cfg, m.log)
	})
	if err != nil {
		m.t.Fatalf("start metrics: %v", err)
	}
	m.Addr, m.PrometheusAddr = svc.Addr().String(), svc.PrometheusAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done, m.running = cancel, make(chan error, 1), true
	go func() { m.done <- svc.Run(ctx) }()
	if m.conn == nil {
		if m.conn, err = grpcclient.Dial(m.Addr, grpcclient.WithBearer(m.AdminToken)); err != nil {
			m.t.Fatal(err)
		}
	}
}

// Stop stops the service gracefully; Restart starts it again on the same
// addresses and database.
func (m *Metrics) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return
	}
	m.cancel()
	if err := <-m.done; err != nil {
		m.t.Errorf("metrics stopped with an error: %v", err)
	}
	m.running = false
}

// Restart starts a stopped service again.
func (m *Metrics) Restart() { m.start() }

// Client is a MetricsService client (it reconnects across restarts).
func (m *Metrics) Client() metricsv1.MetricsServiceClient {
	return metricsv1.NewMetricsServiceClient(m.conn)
}

// Conn is the client connection to the service.
func (m *Metrics) Conn() *grpc.ClientConn { return m.conn }
