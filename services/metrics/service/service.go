// Package service is the metrics service's composition root: it opens its
// PostgreSQL schema (migrating it first), builds the adapters, the use cases
// and the gRPC ports by hand, and runs them with the background work (group
// committer, classroom rollups, partition maintenance, Prometheus endpoint) until its context
// ends. It is public within the module so that `gaia up` and tests can run
// the service in-process; everything it wires stays in internal/.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/internal/telemetry"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	"github.com/gaia-platform/gaia/migrations"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/metrics/internal/adapters"
	"github.com/gaia-platform/gaia/services/metrics/internal/app"
	"github.com/gaia-platform/gaia/services/metrics/internal/ports"
)

// Schema is the PostgreSQL schema the metrics service owns.
const Schema = "metrics"

// MaxRecvMsgSize bounds a gRPC request: a full batch with room to spare, the
// same bound the gateway puts on REST bodies.
const MaxRecvMsgSize = 8 << 20

// Service is a built metrics service, listening but not yet serving.
type Service struct {
	cfg       Config
	log       *zap.Logger
	lis       *process.Listeners
	grpc      *grpcserver.Server
	pool      *pgxpool.Pool
	registry  *prometheus.Registry
	committer *app.GroupCommitter
	retention *app.Retention
	rollups   *app.Rollups
	mode      string
	notifier  *adapters.FrustrationNotifier
	// The detector and its partition ownership; nil when
	// FRUSTRATION_DETECTION_ENABLED=false.
	detector  *app.Detector
	ownership *app.Ownership
	locks     *adapters.CoordinatorLocks
	coord     *client.Client
	auth      *auth.Runtime
	// classrooms resolves teachers' classrooms over dashboardConn.
	classrooms    *adapters.DashboardClassrooms
	dashboardConn *grpc.ClientConn
	dashboardMu   sync.Mutex
	tls           *tlsconfig.Source // gRPC, served and dialed; nil is plaintext
}

// New opens the listeners and the database, and wires the service.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Service, error) {
	files, err := migrations.For(Schema)
	if err != nil {
		return nil, err
	}
	serverTLS, err := tlsconfig.Open(cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, tls: serverTLS}
	// Teachers' classroom assignments live in the dashboard: a teacher's
	// classroom-scoped call is checked against its ListTeacherClassrooms,
	// asked with this service's credential and cached briefly.
	ttl := cfg.TeacherClassroomsTTL
	if ttl <= 0 {
		ttl = DefaultTeacherClassroomsTTL
	}
	s.classrooms = adapters.NewDashboardClassrooms(ttl)
	if s.auth, err = auth.NewRuntime(cfg.Auth, s.classrooms, log.Named("auth")); err != nil {
		return nil, err
	}
	if err := s.UseDashboard(cfg.DashboardAddr); err != nil {
		return nil, err
	}
	if s.lis, err = process.Listen(cfg.ListenAddr, cfg.PrometheusAddr); err != nil {
		s.closeDashboard()
		return nil, err
	}
	fail := func(err error) (*Service, error) {
		s.closeClients()
		s.lis.Close()
		return nil, err
	}
	if s.pool, err = pg.OpenSchema(ctx, cfg.DatabaseURL, Schema, files, log); err != nil {
		return fail(err)
	}
	if s.mode, err = adapters.StorageMode(ctx, s.pool); err != nil {
		return fail(fmt.Errorf("read the events table's storage mode: %w", err))
	}

	var partitions *adapters.PartitionPostgresStore
	s.registry = telemetry.NewRegistry()
	var metrics *app.Metrics
	if s.mode == adapters.StorageTimescaleDB {
		if err := adapters.SetTimescaleRetention(ctx, s.pool, cfg.Retention); err != nil {
			return fail(fmt.Errorf("set the hypertable's retention policy: %w", err))
		}
		metrics = app.NewMetrics(s.registry, nil)
		s.retention = app.NewRetention(adapters.NewPartitionPostgresStore(s.pool), cfg.Retention, cfg.PartitionInterval, log.Named("retention"))
		s.retention.RollupsOnly()
	} else {
		partitions = adapters.NewPartitionPostgresStore(s.pool)
		metrics = app.NewMetrics(s.registry, partitions.List)
		s.retention = app.NewRetention(partitions, cfg.Retention, cfg.PartitionInterval, log.Named("partitions"))
		// Partitions exist before the first write is taken.
		if err := s.retention.Maintain(ctx); err != nil {
			return fail(fmt.Errorf("create the events table's partitions: %w", err))
		}
	}

	events := adapters.NewEventPostgresRepository(s.pool, partitions)
	s.committer = app.NewGroupCommitter(app.GroupCommitConfig{Writers: cfg.GroupCommitWriters}, events, metrics, log.Named("group-commit"))
	rollupInterval := cfg.RollupInterval
	if rollupInterval <= 0 {
		rollupInterval = DefaultRollupInterval
	}
	s.rollups = app.NewRollups(adapters.NewRollupPostgresConsumer(s.pool), rollupInterval, metrics, log.Named("rollups"))
	s.committer.OnCommit = s.rollups.Wake
	ingest := app.NewIngest(app.IngestConfig{Enabled: cfg.UsabilityMetricsEnabled, MaxBatch: cfg.MaxBatch, Retention: cfg.Retention}, s.committer, metrics)
	ratings := app.NewRatings(adapters.NewRatingPostgresRepository(s.pool), cfg.UsabilityMetricsEnabled, cfg.Retention, metrics)
	snapshots := app.NewSnapshots(adapters.NewSnapshotPostgresRepository(s.pool))
	frustrationStore := adapters.NewFrustrationPostgresStore(s.pool)
	s.notifier = adapters.NewFrustrationNotifier(s.pool, log.Named("frustration-notifier"))
	frustration := app.NewFrustration(frustrationStore, frustrationStore, s.notifier)
	if cfg.FrustrationDetectionEnabled {
		if s.coord, err = client.New(client.Options{Addrs: strings.Split(cfg.CoordinatorAddr, ","), Token: s.auth.Token(), Logger: log.Named("coordinator-client"),
			DialOptions: []grpc.DialOption{grpcclient.WithTLS(serverTLS)}}); err != nil {
			return fail(fmt.Errorf("coordinator client: %w", err))
		}
		s.detector = app.NewDetector(app.DetectorConfig{Partitions: cfg.DetectionPartitions, PollInterval: cfg.DetectionPollInterval,
			Owner: ownerName()}, adapters.NewDetectorSource(s.pool), frustrationStore, s.registry, log.Named("detector"))
		s.locks = adapters.NewCoordinatorLocks(s.coord, cfg.JoinSecret)
		s.ownership = app.NewOwnership(app.OwnershipConfig{LockTTL: cfg.DetectionLockTTL}, s.locks, s.detector, log.Named("detector-ownership"))
	}
	// The detector reads as soon as this replica commits events.
	if s.detector != nil {
		s.committer.OnCommit = func() {
			s.rollups.Wake()
			s.detector.Wake()
		}
	}

	s.grpc = grpcserver.New(grpcserver.Options{Name: "metrics", Logger: log, ShutdownTimeout: cfg.ShutdownTimeout, HealthListenAddr: cfg.HealthListenAddr, Limits: cfg.GRPCLimits, MaxRecvMsgSize: MaxRecvMsgSize, TLS: serverTLS, Auth: s.auth.Authorizer()})
	metricsv1.RegisterMetricsServiceServer(s.grpc.GRPC(), &ports.MetricsServer{Ingest: ingest, Ratings: ratings, Snapshots: snapshots, Frustration: frustration, MaxReplyBytes: cfg.MaxReplyBytes})
	log.Info("metrics ready", zap.String("grpc_address", s.lis.GRPC.Addr().String()), zap.String("prometheus_address", s.lis.Metrics.Addr().String()),
		zap.String("event_storage", s.mode), zap.Bool("usability_metrics_enabled", cfg.UsabilityMetricsEnabled), zap.Duration("retention", cfg.Retention),
		zap.Bool("frustration_detection_enabled", cfg.FrustrationDetectionEnabled), zap.Int("detection_partitions", cfg.DetectionPartitions))
	return s, nil
}

// UseDashboard points the teachers' classroom checks at the dashboard
// service at addr (New dials DASHBOARD_ADDR; gaia up calls it again once the
// dashboard listens). The connection is lazy: an unreachable dashboard
// fails teachers' calls with UNAVAILABLE, not the start.
func (s *Service) UseDashboard(addr string) error {
	conn, err := grpcclient.Dial(addr, grpcclient.WithTLS(s.tls), grpcclient.WithBearer(s.auth.Token()))
	if err != nil {
		return fmt.Errorf("dashboard client for %s: %w", addr, err)
	}
	s.dashboardMu.Lock()
	old := s.dashboardConn
	s.dashboardConn = conn
	s.classrooms.SetConn(conn, addr)
	s.dashboardMu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (s *Service) closeDashboard() {
	s.dashboardMu.Lock()
	defer s.dashboardMu.Unlock()
	if s.dashboardConn != nil {
		_ = s.dashboardConn.Close()
		s.dashboardConn = nil
	}
}

// closeClients closes the dashboard connection and the database pool,
// whichever of them New got to open.
func (s *Service) closeClients() {
	s.closeDashboard()
	if s.pool != nil {
		s.pool.Close()
	}
}

// ownerName names this replica in the detector's partitions table.
func ownerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// Addr is where the gRPC server listens.
func (s *Service) Addr() net.Addr { return s.lis.GRPC.Addr() }

// PrometheusAddr is where /metrics is served.
func (s *Service) PrometheusAddr() net.Addr { return s.lis.Metrics.Addr() }

// StorageMode is how the events table is stored: "native" or "timescaledb".
func (s *Service) StorageMode() string { return s.mode }

// Run serves until ctx ends, then drains the gRPC server (callers waiting on
// a group commit get their answer), stops the background work and closes
// the pool.
func (s *Service) Run(ctx context.Context) error {
	jobs := background.NewJobs(s.log, background.Options{})
	// The committer outlives the gRPC drain, which waits for its answers.
	committer := background.NewJobs(s.log, background.Options{})
	committer.Go("group-commit", s.committer.Run)
	if s.retention != nil {
		jobs.Go("retention", s.retention.Run)
	}
	jobs.Go("rollups", s.rollups.Run)
	jobs.Go("revocations", func(ctx context.Context) {
		s.auth.PollCoordinator(ctx, s.cfg.CoordinatorAddr, grpcclient.WithTLS(s.tls))
	})
	var promErr error
	jobs.Go("prometheus", func(ctx context.Context) { promErr = telemetry.Serve(ctx, s.lis.Metrics, s.registry) })
	jobs.Go("frustration-notifier", s.notifier.Run)
	// Ready only while PostgreSQL answers and, when detection runs, a
	// coordinator with a leader (which grants the detection locks).
	deps := []grpcserver.Dependency{{Name: "postgresql", Check: s.pool.Ping}}
	if s.coord != nil {
		deps = append(deps, grpcserver.HealthDependency("coordinator", healthpb.NewHealthClient(s.coord.Conn()), grpcserver.ReadinessService))
	}
	jobs.Go("readiness", func(ctx context.Context) { s.grpc.WatchReadiness(ctx, deps...) })
	// The detector outlives its ownership loop, whose final release asks it
	// for a last checkpoint of every partition.
	detector := background.NewJobs(s.log, background.Options{})
	ownership := background.NewJobs(s.log, background.Options{})
	if s.detector != nil {
		detector.Go("detector", s.detector.Run)
		ownership.Go("detector-ownership", s.ownership.Run)
	}

	err := s.grpc.Serve(ctx, s.lis.GRPC)
	ownership.Stop()
	detector.Stop()
	if s.locks != nil {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.locks.Stop(dctx)
		cancel()
		_ = s.coord.Close()
	}
	committer.Stop()
	jobs.Stop()
	s.closeClients()
	if promErr != nil && !errors.Is(promErr, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("prometheus server: %w", promErr))
	}
	return err
}
