// Package service is the dashboard service's composition root: it opens its
// PostgreSQL schema (migrating it first), builds the adapters, the use cases
// and the gRPC ports by hand, and runs them with the background work (the
// frustration event follower, the alert hub and its notification listener)
// until its context ends. It is public within the module so that `gaia up`
// and tests can run the service in-process; everything it wires stays in
// internal/.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/internal/telemetry"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	"github.com/gaia-platform/gaia/migrations"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	"github.com/gaia-platform/gaia/services/dashboard/internal/adapters"
	"github.com/gaia-platform/gaia/services/dashboard/internal/app"
	"github.com/gaia-platform/gaia/services/dashboard/internal/ports"
)

// Schema is the PostgreSQL schema the dashboard service owns.
const Schema = "dashboard"

// Service is a built dashboard service, listening but not yet serving.
type Service struct {
	cfg         Config
	log         *zap.Logger
	lis         *process.Listeners
	registry    *prometheus.Registry
	grpc        *grpcserver.Server
	pool        *pgxpool.Pool
	metricsConn *grpc.ClientConn
	hub         *app.Hub
	follower    *app.Follower // nil when TEACHER_DASHBOARD_ENABLED=false
	dashboard   *app.Dashboard
	auth        *auth.Runtime
	tls         *tlsconfig.Source // gRPC, served and dialed; nil is plaintext
}

// New opens the listener and the database, and wires the service.
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
	// The dashboard owns teachers' classroom assignments: the service itself
	// is the classroom resolver of teachers' credentials.
	if s.auth, err = auth.NewRuntime(cfg.Auth, s, log.Named("auth")); err != nil {
		return nil, err
	}
	if s.lis, err = process.Listen(cfg.ListenAddr, cfg.PrometheusAddr); err != nil {
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
	repo := adapters.NewAlertPostgresRepository(s.pool)
	s.hub = app.NewHub(repo, cfg.SubscriberBuffer, log.Named("hub"))
	s.registry = telemetry.NewRegistry()
	app.NewMetrics(s.registry, s.hub)
	if err := s.hub.Start(ctx); err != nil {
		return fail(err)
	}
	// Dialled lazily: a metrics service that is down delays alerts and
	// overviews, not start-up. Overviews read the classroom's active students
	// from it also while new alerts are off.
	if s.metricsConn, err = grpcclient.Dial(cfg.MetricsAddr, grpcclient.WithTLS(serverTLS), grpcclient.WithBearer(s.auth.Token())); err != nil {
		return fail(fmt.Errorf("dial metrics at %s: %w", cfg.MetricsAddr, err))
	}
	if cfg.TeacherDashboardEnabled {
		s.follower = app.NewFollower(adapters.NewMetricsFrustrationSource(s.metricsConn), repo, s.hub, log.Named("follower"))
	}
	s.dashboard = app.NewDashboard(repo, s.hub, adapters.NewMetricsStudentSource(s.metricsConn), cfg.TeacherDashboardEnabled)
	s.grpc = grpcserver.New(grpcserver.Options{Name: "dashboard", Logger: log, ShutdownTimeout: cfg.ShutdownTimeout, HealthListenAddr: cfg.HealthListenAddr, Limits: cfg.GRPCLimits, TLS: serverTLS, Auth: s.auth.Authorizer()})
	dashboardv1.RegisterDashboardServiceServer(s.grpc.GRPC(), &ports.DashboardServer{Dashboard: s.dashboard, MaxReplyBytes: cfg.MaxReplyBytes})
	log.Info("dashboard ready", zap.String("grpc_address", s.lis.GRPC.Addr().String()), zap.String("prometheus_address", s.lis.Metrics.Addr().String()),
		zap.Bool("teacher_dashboard_enabled", cfg.TeacherDashboardEnabled), zap.String("metrics_address", cfg.MetricsAddr))
	return s, nil
}

// Addr is where the gRPC server listens.
func (s *Service) Addr() net.Addr { return s.lis.GRPC.Addr() }

// PrometheusAddr is where /metrics is served.
func (s *Service) PrometheusAddr() net.Addr { return s.lis.Metrics.Addr() }

// TeacherHasClassroom answers whether a classroom is assigned to a teacher:
// the classroom scope of teachers' credentials.
func (s *Service) TeacherHasClassroom(ctx context.Context, teacherID, classroomID string) (bool, error) {
	return s.dashboard.TeacherHasClassroom(ctx, teacherID, classroomID)
}

// Run serves until ctx ends, then drains the gRPC server, stops the
// background work and closes the pool.
func (s *Service) Run(ctx context.Context) error {
	jobs := background.NewJobs(s.log, background.Options{})
	jobs.Go("hub", s.hub.Run)
	jobs.Go("revocations", func(ctx context.Context) {
		s.auth.PollCoordinator(ctx, s.cfg.CoordinatorAddr, grpcclient.WithTLS(s.tls))
	})
	jobs.Go("notifications", func(ctx context.Context) {
		adapters.Listen(ctx, s.pool, []string{adapters.AlertsChannel, adapters.AssignmentsChannel}, func(channel, payload string) {
			var err error
			switch channel {
			case adapters.AlertsChannel:
				s.hub.Poke()
			case adapters.AssignmentsChannel:
				err = s.hub.TeacherChanged(ctx, payload)
			default: // (re)connected: notifications may have been missed
				s.hub.Poke()
				err = s.hub.AllTeachersChanged(ctx)
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("apply a notification", zap.String("channel", channel), zap.Error(err))
			}
		}, s.log.Named("listen"))
	})
	if s.follower != nil {
		jobs.Go("follower", s.follower.Run)
	}
	// Ready only while PostgreSQL answers.
	jobs.Go("readiness", func(ctx context.Context) {
		s.grpc.WatchReadiness(ctx, grpcserver.Dependency{Name: "postgresql", Check: s.pool.Ping})
	})
	var promErr error
	jobs.Go("prometheus", func(ctx context.Context) { promErr = telemetry.Serve(ctx, s.lis.Metrics, s.registry) })
	// The hub ends live subscriptions (telling each where to resume) before
	// the gRPC server drains, so the drain does not wait on them.
	stopHub := context.AfterFunc(ctx, jobs.Stop)
	defer stopHub()
	err := s.grpc.Serve(ctx, s.lis.GRPC)
	jobs.Stop()
	s.closeClients()
	if promErr != nil && !errors.Is(promErr, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("prometheus server: %w", promErr))
	}
	return err
}

// closeClients closes the database pool and the metrics service's
// connection, whichever of them New got to open.
func (s *Service) closeClients() {
	if s.metricsConn != nil {
		_ = s.metricsConn.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}
