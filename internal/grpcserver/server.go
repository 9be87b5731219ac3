package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// Defaults for Options fields left zero.
const (
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxRecvMsgSize  = 4 << 20
)

// KeepaliveMinPingInterval is the most often a client may ping, even with no
// RPC in flight; grpcclient pings every 20s. A client pinging more often is
// disconnected with ENHANCE_YOUR_CALM.
const KeepaliveMinPingInterval = 10 * time.Second

// Options configures a Server. Zero values take the defaults.
type Options struct {
	Name            string        // service name for logs
	Logger          *zap.Logger   // nil logs nothing
	ShutdownTimeout time.Duration // how long in-flight RPCs and streams may drain; default 10s
	MaxRecvMsgSize  int           // bytes; default 4 MiB
	// Auth applies the policy table (internal/auth) to every call: who may
	// call which method, the request's scope, per-credential rate limits and
	// the audit log. Every GAIA service sets it; nil checks nothing and is
	// for tests of the server itself.
	Auth *auth.Authorizer
	// TLS, when set, serves TLS with its current certificate (reloaded when
	// the files change); nil serves plaintext.
	TLS *tlsconfig.Source
	// HealthListener, when set, also serves grpc.health.v1 — and nothing
	// else — in plaintext on this listener, from the same health server as
	// the main port, so every service name (the coordinator's "readiness"
	// and "liveness" too) answers identically there. It is for probes that
	// cannot speak TLS (the kubelet's native gRPC probe); health statuses
	// carry no data and the port takes no credentials, so plaintext exposes
	// nothing. Serve closes it.
	HealthListener net.Listener
	// Limits bound connections and streams (see Limits).
	Limits Limits
	// HealthListenAddr, when HealthListener is nil and this is not empty, is
	// where Serve listens for that plaintext health-only port
	// (<SERVICE>_HEALTH_LISTEN_ADDR); Serve fails if it cannot listen there.
	HealthListenAddr string
}

// Server is a grpc.Server with GAIA's interceptors, health and reflection,
// and a shutdown that drains.
type Server struct {
	name            string
	log             *zap.Logger
	shutdownTimeout time.Duration
	grpc            *grpc.Server
	health          *health.Server
	auth            *auth.Authorizer
	auditLog        *zap.Logger
	// healthLis and healthGRPC serve health alone in plaintext; nil when
	// Options.HealthListener is unset.
	healthLis  net.Listener
	healthAddr string
	healthGRPC *grpc.Server

	// drainCtx is cancelled when shutdown starts; stream handlers' contexts
	// hang off it.
	drainCtx   context.Context
	startDrain context.CancelFunc

	limits  Limits
	streams *streamLimiter
}

// New builds a server. extra options are applied after GAIA's, so they can
// override the message size or keepalive; extra interceptors run inside
// GAIA's (after recovery, logging and error mapping).
func New(opts Options, extra ...grpc.ServerOption) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.MaxRecvMsgSize <= 0 {
		opts.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	opts.Limits.defaults()
	drainCtx, startDrain := context.WithCancel(context.Background())
	s := &Server{
		name:            opts.Name,
		log:             opts.Logger,
		shutdownTimeout: opts.ShutdownTimeout,
		health:          health.NewServer(),
		auth:            opts.Auth,
		auditLog:        opts.Logger.Named("audit"),
		drainCtx:        drainCtx,
		startDrain:      startDrain,
		limits:          opts.Limits,
		streams:         newStreamLimiter(opts.Limits),
	}
	serverOpts := append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryInterceptors()...),
		grpc.ChainStreamInterceptor(s.streamInterceptors()...),
		grpc.MaxRecvMsgSize(opts.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(opts.Limits.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             KeepaliveMinPingInterval,
			PermitWithoutStream: true,
		}),
	}, extra...)
	if opts.TLS != nil {
		serverOpts = append([]grpc.ServerOption{grpc.Creds(opts.TLS.Credentials())}, serverOpts...)
	}
	s.grpc = grpc.NewServer(serverOpts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if opts.HealthListener != nil || opts.HealthListenAddr != "" {
		s.healthLis, s.healthAddr = opts.HealthListener, opts.HealthListenAddr
		// No interceptors: health needs no credentials, and any other
		// method is UNIMPLEMENTED because no other service is registered.
		s.healthGRPC = grpc.NewServer(
			grpc.MaxRecvMsgSize(64<<10),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
				MinTime:             KeepaliveMinPingInterval,
				PermitWithoutStream: true,
			}))
		healthpb.RegisterHealthServer(s.healthGRPC, s.health)
	}
	return s
}

// GRPC is the server to register services on, before Serve.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health reports each registered service and the server as a whole ("")
// SERVING from the moment Serve starts and NOT_SERVING once it drains. A
// service may set its own status in between, for example NOT_SERVING while
// it has lost its database.
func (s *Server) Health() *health.Server { return s.health }

// Draining is closed when shutdown starts.
func (s *Server) Draining() <-chan struct{} { return s.drainCtx.Done() }

// Serve serves on lis until ctx is done, then drains: health turns
// NOT_SERVING, stream handlers' contexts are cancelled, new connections are
// refused, and in-flight RPCs get ShutdownTimeout to finish before their
// connections are closed. It returns nil after such a shutdown, or the
// error that stopped it serving. A Server serves once.
//
// Serve returns at most ShutdownTimeout after ctx ends even if a handler is
// stuck: that handler's client gets UNAVAILABLE and the handler is left
// running, for the process to exit under it.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	addr := lis.Addr().String()
	if s.healthGRPC != nil && s.healthLis == nil {
		var lc net.ListenConfig
		hl, err := lc.Listen(ctx, "tcp", s.healthAddr)
		if err != nil {
			_ = lis.Close()
			s.startDrain()
			return fmt.Errorf("listen for grpc health on %s: %w", s.healthAddr, err)
		}
		s.healthLis = hl
	}
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	lis = &connLimitListener{Listener: lis, max: int64(s.limits.MaxConnections), log: s.log.With(zap.String("server", s.name))}
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	s.log.Info("grpc server serving", zap.String("server", s.name), zap.String("addr", addr))
	if s.healthGRPC != nil {
		// The health port outlives the main port's drain, so probes see
		// NOT_SERVING rather than a refused connection while it drains.
		healthServed := make(chan struct{})
		go func() {
			defer close(healthServed)
			if err := s.healthGRPC.Serve(s.healthLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				s.log.Error("grpc health listener failed", zap.String("server", s.name),
					zap.String("addr", s.healthLis.Addr().String()), zap.Error(err))
			}
		}()
		defer func() { s.healthGRPC.Stop(); <-healthServed }()
		s.log.Info("grpc health serving in plaintext", zap.String("server", s.name),
			zap.String("addr", s.healthLis.Addr().String()))
	}

	select {
	case err := <-served:
		return s.failed(addr, err)
	case <-ctx.Done():
	}
	// When the listener failed just as ctx ended, both are ready and select
	// picks one at random: the failure must still be reported.
	select {
	case err := <-served:
		return s.failed(addr, err)
	default:
	}

	s.drain(addr)
	// ErrServerStopped only means ctx ended before Serve got going.
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve grpc on %s: %w", addr, err)
	}
	return nil
}

// failed stops a server whose listener failed; there is nothing left to
// drain towards.
func (s *Server) failed(addr string, err error) error {
	s.health.Shutdown()
	s.startDrain()
	s.grpc.Stop()
	return fmt.Errorf("serve grpc on %s: %w", addr, err)
}

func (s *Server) drain(addr string) {
	s.log.Info("grpc server draining",
		zap.String("server", s.name),
		zap.String("addr", addr),
		zap.Duration("timeout", s.shutdownTimeout))
	s.health.Shutdown()
	s.startDrain()

	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	timeout := time.NewTimer(s.shutdownTimeout)
	defer timeout.Stop()
	select {
	case <-stopped:
	case <-timeout.C:
		s.log.Warn("grpc server drain timed out; closing remaining connections",
			zap.String("server", s.name),
			zap.String("addr", addr),
			zap.Duration("timeout", s.shutdownTimeout))
		// Stop closes the connections but, unlike GracefulStop, does not
		// wait for handlers; one that ignores its context may outlive
		// Serve, and the GracefulStop goroutine with it.
		s.grpc.Stop()
	}
	s.log.Info("grpc server stopped", zap.String("server", s.name), zap.String("addr", addr))
}

// ListenAndServe listens on addr (host:port) and serves s there until ctx is
// done.
func ListenAndServe(ctx context.Context, addr string, s *Server) error {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for grpc on %s: %w", addr, err)
	}
	return s.Serve(ctx, lis)
}
