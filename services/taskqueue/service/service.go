// Package service is the taskqueue service's composition root: it opens its
// PostgreSQL schema (migrating it first), connects to the coordinator, builds
// the queue and the gRPC ports by hand, and runs them with the background
// work (notification listener, session watch, reaper, reconciler, pruner)
// until its context ends. It is public within the module so that `gaia up`
// and other services' tests can run the queue in-process.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/adapters"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/app"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/ports"
)

// Schema is the PostgreSQL schema the taskqueue service owns.
const Schema = "taskqueue"

// Service is a built taskqueue service, listening but not yet serving.
type Service struct {
	cfg      Config
	log      *zap.Logger
	lis      *process.Listeners
	grpc     *grpcserver.Server
	pool     *pgxpool.Pool
	coord    *client.Client
	queue    *app.Queue
	notifier *adapters.ReadyNotifier
	sessions *adapters.CoordinatorSessions
	registry *prometheus.Registry
	auth     *auth.Runtime
}

// New opens the listeners and the database, and wires the queue.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Service, error) {
	files, err := migrations.For(Schema)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log}
	serverTLS, err := tlsconfig.Open(cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	if s.auth, err = auth.NewRuntime(cfg.Auth, nil, log.Named("auth")); err != nil {
		return nil, err
	}
	if s.lis, err = process.Listen(cfg.ListenAddr, cfg.MetricsAddr); err != nil {
		return nil, err
	}
	if s.pool, err = pg.OpenSchema(ctx, cfg.DatabaseURL, Schema, files, log); err != nil {
		s.lis.Close()
		return nil, err
	}
	if s.coord, err = client.New(client.Options{Addrs: cfg.CoordinatorAddrs, Token: s.auth.Token(), Logger: log.Named("coordinator-client"),
		DialOptions: []grpc.DialOption{grpcclient.WithTLS(serverTLS)}}); err != nil {
		s.pool.Close()
		s.lis.Close()
		return nil, fmt.Errorf("coordinator client: %w", err)
	}

	tasks := adapters.NewTaskPostgresRepository(s.pool, log.Named("tasks"))
	s.notifier = adapters.NewReadyNotifier(s.pool, log)
	s.sessions = adapters.NewCoordinatorSessions(s.coord, log)
	s.registry = telemetry.NewRegistry()
	metrics := app.NewMetrics(s.registry, &app.TypeLabels{Types: cfg.MetricTaskTypes, Max: cfg.MetricMaxTaskTypes}, tasks.Depth)
	s.queue = app.New(app.Config{
		MaxAttempts:       cfg.MaxRetries,
		ClaimTimeout:      cfg.ClaimTimeout,
		Retention:         cfg.Retention,
		DeadRetention:     cfg.DeadRetention,
		ReapInterval:      cfg.ReapInterval,
		ReapTimeout:       30 * time.Second,
		ReconcileInterval: 5 * time.Second,
		ReconcileTimeout:  time.Minute,
		LookupTimeout:     2 * time.Second,
		PollInterval:      500 * time.Millisecond,
		PruneInterval:     10 * time.Minute,
		PruneTimeout:      5 * time.Minute,
	}, app.Stores{
		Tasks:      tasks,
		Lessons:    adapters.NewLessonPostgresRepository(s.pool),
		Affinities: adapters.NewAffinityPostgresRepository(s.pool),
	}, s.sessions, s.notifier, metrics, log)

	s.grpc = grpcserver.New(grpcserver.Options{Name: "taskqueue", Logger: log, ShutdownTimeout: cfg.ShutdownTimeout, HealthListenAddr: cfg.HealthListenAddr, Limits: cfg.GRPCLimits, TLS: serverTLS, Auth: s.auth.Authorizer()})
	(&ports.Servers{Queue: s.queue, MaxReplyBytes: cfg.MaxReplyBytes}).Register(s.grpc.GRPC())
	log.Info("taskqueue ready", zap.String("grpc_address", s.lis.GRPC.Addr().String()), zap.String("metrics_address", s.lis.Metrics.Addr().String()), zap.Strings("coordinator", cfg.CoordinatorAddrs))
	return s, nil
}

// Addr is where the gRPC server listens.
func (s *Service) Addr() net.Addr { return s.lis.GRPC.Addr() }

// MetricsAddr is where /metrics is served.
func (s *Service) MetricsAddr() net.Addr { return s.lis.Metrics.Addr() }

// Run serves until ctx ends, then drains the gRPC server, stops the
// background work and closes the pool.
func (s *Service) Run(ctx context.Context) error {
	var metricsErr error
	// Each job restarts after a panic rather than ending the process (which,
	// under `gaia up`, runs every service).
	jobs := background.NewJobs(s.log, background.Options{})
	jobs.Go("revocations", func(ctx context.Context) { s.auth.Run(ctx, auth.RevocationsFrom(s.coord.Conn())) })
	jobs.Go("ready-notifier", s.notifier.Run)
	jobs.Go("queue", s.queue.Run)
	jobs.Go("session-watch", func(ctx context.Context) {
		if err := s.sessions.Run(ctx, s.queue.SessionEnded); err != nil && ctx.Err() == nil {
			s.log.Error("session watch stopped", zap.Error(err))
		}
	})
	jobs.Go("metrics", func(ctx context.Context) { metricsErr = telemetry.Serve(ctx, s.lis.Metrics, s.registry) })
	// Ready only while PostgreSQL and a coordinator with a leader answer:
	// without either no claim, enqueue or settle can succeed.
	jobs.Go("readiness", func(ctx context.Context) {
		s.grpc.WatchReadiness(ctx,
			grpcserver.Dependency{Name: "postgresql", Check: s.pool.Ping},
			grpcserver.HealthDependency("coordinator", healthpb.NewHealthClient(s.coord.Conn()), grpcserver.ReadinessService))
	})

	err := s.grpc.Serve(ctx, s.lis.GRPC)
	jobs.Stop()
	_ = s.coord.Close()
	s.pool.Close()
	if metricsErr != nil && !errors.Is(metricsErr, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("metrics server: %w", metricsErr))
	}
	return err
}
