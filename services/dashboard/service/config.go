package service

import (
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// Config is the dashboard service's configuration, read from the environment.
type Config struct {
	// ListenAddr is the gRPC listen address (DASHBOARD_LISTEN_ADDR).
	ListenAddr string
	// HealthListenAddr, when set, also serves gRPC health alone, in plaintext
	// (DASHBOARD_HEALTH_LISTEN_ADDR), for probes that cannot speak TLS; empty serves none.
	HealthListenAddr string
	// GRPCLimits bound the gRPC server's connections and streams
	// (GRPC_MAX_CONNECTIONS, GRPC_MAX_CONCURRENT_STREAMS,
	// GRPC_MAX_STREAMS_PER_CLIENT); zero fields take the defaults.
	GRPCLimits grpcserver.Limits
	// MaxReplyBytes bounds every reply (GRPC_MAX_REPLY_BYTES, default
	// 3 MiB): a ListAlerts page stops short of it; 0 takes the default.
	MaxReplyBytes int
	// PrometheusAddr serves Prometheus metrics at /metrics
	// (DASHBOARD_PROMETHEUS_LISTEN_ADDR).
	PrometheusAddr  string
	DatabaseURL     string
	ShutdownTimeout time.Duration
	// MetricsAddr is the metrics service to follow for frustration events.
	MetricsAddr string
	// TeacherDashboardEnabled turns alerts on (TEACHER_DASHBOARD_ENABLED).
	TeacherDashboardEnabled bool
	// TLS is the gRPC port's certificate and the CA that verifies the
	// services it dials (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE); none
	// means plaintext.
	TLS tlsconfig.Files
	// SubscriberBuffer is how many alerts a live subscription may have
	// waiting before it is cut as too slow (DASHBOARD_SUBSCRIBER_BUFFER).
	SubscriberBuffer int
	// CoordinatorAddr is the coordinator the revocation list comes from
	// (COORDINATOR_ADDR).
	CoordinatorAddr string
	// Auth verifies callers and holds the service's own credential
	// (internal/auth).
	Auth auth.Config
}

// LoadConfig reads the dashboard service's variables; problems are recorded in l.
func LoadConfig(l *config.Loader) Config {
	return Config{
		ListenAddr:              l.ListenAddr("DASHBOARD_LISTEN_ADDR", ":7004"),
		HealthListenAddr:        l.ListenAddr("DASHBOARD_HEALTH_LISTEN_ADDR", ""),
		GRPCLimits:              grpcserver.LoadLimits(l),
		MaxReplyBytes:           grpcserver.LoadMaxReplyBytes(l),
		PrometheusAddr:          l.ListenAddr("DASHBOARD_PROMETHEUS_LISTEN_ADDR", ":9104"),
		DatabaseURL:             pg.URL(l, "DATABASE_URL", pg.DefaultURL),
		ShutdownTimeout:         l.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond),
		MetricsAddr:             l.DialAddr("METRICS_ADDR", "127.0.0.1:7003"),
		TeacherDashboardEnabled: l.Bool("TEACHER_DASHBOARD_ENABLED", true),
		TLS:                     tlsconfig.Load(l, "", tlsconfig.Files{}),
		SubscriberBuffer:        l.Int("DASHBOARD_SUBSCRIBER_BUFFER", 256, 1, 1<<16),
		CoordinatorAddr:         l.DialAddr("COORDINATOR_ADDR", "127.0.0.1:7001"),
		Auth:                    auth.LoadConfig(l),
	}
}
