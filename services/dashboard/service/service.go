// Package service is the dashboard service's composition root: it opens its
// PostgreSQL schema (migrating it first), builds the use cases and the gRPC ports
// by hand, and runs them until its context ends. It is public within the module
// so that `gaia up` can run the service in-process; everything it wires stays in
// internal/.
package service

import (
	"context"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	"github.com/gaia-platform/gaia/migrations"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	"github.com/gaia-platform/gaia/services/dashboard/internal/ports"
)

// Schema is the PostgreSQL schema the dashboard service owns.
const Schema = "dashboard"

// Service is a built dashboard service, listening but not yet serving.
type Service struct {
	cfg  Config
	log  *zap.Logger
	lis  net.Listener
	grpc *grpcserver.Server
	pool *pgxpool.Pool
}

// New opens the listener and the database, and wires the gRPC services.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Service, error) {
	files, err := migrations.For(Schema)
	if err != nil {
		return nil, err
	}
	serverTLS, err := tlsconfig.Open(cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for grpc on %s: %w", cfg.ListenAddr, err)
	}
	pool, err := pg.OpenSchema(ctx, cfg.DatabaseURL, Schema, files, log)
	if err != nil {
		_ = lis.Close()
		return nil, err
	}
	srv := grpcserver.New(grpcserver.Options{Name: "dashboard", Logger: log, ShutdownTimeout: cfg.ShutdownTimeout, TLS: serverTLS})
	dashboardv1.RegisterDashboardServiceServer(srv.GRPC(), &ports.DashboardServer{})
	log.Info("dashboard ready", zap.String("grpc_address", lis.Addr().String()))
	return &Service{cfg: cfg, log: log, lis: lis, grpc: srv, pool: pool}, nil
}

// Addr is where the gRPC server listens.
func (s *Service) Addr() net.Addr { return s.lis.Addr() }

// Run serves until ctx ends, then drains the gRPC server and closes the pool.
func (s *Service) Run(ctx context.Context) error {
	defer s.pool.Close()
	return s.grpc.Serve(ctx, s.lis)
}
