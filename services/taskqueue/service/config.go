package service

import (
	"strings"
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// Config is the taskqueue service's configuration, read from the environment.
type Config struct {
	// ListenAddr is the gRPC listen address (TASKQUEUE_LISTEN_ADDR).
	ListenAddr string
	// HealthListenAddr, when set, also serves gRPC health alone, in plaintext
	// (TASKQUEUE_HEALTH_LISTEN_ADDR), for probes that cannot speak TLS; empty serves none.
	HealthListenAddr string
	// GRPCLimits bound the gRPC server's connections and streams
	// (GRPC_MAX_CONNECTIONS, GRPC_MAX_CONCURRENT_STREAMS,
	// GRPC_MAX_STREAMS_PER_CLIENT); zero fields take the defaults.
	GRPCLimits grpcserver.Limits
	// MaxReplyBytes bounds every reply (GRPC_MAX_REPLY_BYTES, default
	// 3 MiB): ClaimTasks claims no more than fits and list pages stop short
	// of it, each saying so. Keep it under what clients accept (4 MiB by
	// default in gRPC); 0 takes the default.
	MaxReplyBytes int
	// MetricsAddr serves Prometheus metrics at /metrics
	// (TASKQUEUE_PROMETHEUS_LISTEN_ADDR; every service's Prometheus listener
	// is <SERVICE>_PROMETHEUS_LISTEN_ADDR).
	MetricsAddr     string
	DatabaseURL     string
	ShutdownTimeout time.Duration
	// CoordinatorAddrs are coordinator nodes to follow for session events
	// and to check session tokens with; any node will do.
	CoordinatorAddrs []string
	// MaxRetries is the default max_attempts of a task (TASK_MAX_RETRIES).
	MaxRetries int
	// ClaimTimeout is the default lease of a claim (TASK_CLAIM_TIMEOUT).
	ClaimTimeout time.Duration
	// Retention keeps completed and cancelled tasks (TASK_RETENTION);
	// DeadRetention keeps dead ones (TASK_DEAD_RETENTION).
	Retention     time.Duration
	DeadRetention time.Duration
	// ReapInterval is how often expired claims are taken back (TASK_REAP_INTERVAL).
	ReapInterval time.Duration
	// MetricTaskTypes are the task types that get their own task_type label
	// in Prometheus metrics (TASK_METRIC_TYPES, comma-separated); every
	// other type is counted as "other". When empty, the first
	// MetricMaxTaskTypes distinct types seen do (TASK_METRIC_MAX_TYPES).
	MetricTaskTypes    []string
	MetricMaxTaskTypes int
	// TLS is the gRPC port's certificate and the CA that verifies the
	// services it dials (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE); none
	// means plaintext.
	TLS tlsconfig.Files
	// Auth verifies callers and holds the service's own credential
	// (internal/auth).
	Auth auth.Config
}

// LoadConfig reads the taskqueue service's variables; problems are recorded in l.
func LoadConfig(l *config.Loader) Config {
	// The old name would otherwise be ignored without a word.
	if old := l.String("TASKQUEUE_METRICS_ADDR", ""); old != "" {
		l.Reject("TASKQUEUE_METRICS_ADDR", old, "nothing: it was renamed TASKQUEUE_PROMETHEUS_LISTEN_ADDR")
	}
	return Config{
		ListenAddr:         l.ListenAddr("TASKQUEUE_LISTEN_ADDR", ":7002"),
		HealthListenAddr:   l.ListenAddr("TASKQUEUE_HEALTH_LISTEN_ADDR", ""),
		GRPCLimits:         grpcserver.LoadLimits(l),
		MaxReplyBytes:      grpcserver.LoadMaxReplyBytes(l),
		MetricsAddr:        l.ListenAddr("TASKQUEUE_PROMETHEUS_LISTEN_ADDR", ":9102"),
		DatabaseURL:        pg.URL(l, "DATABASE_URL", pg.DefaultURL),
		ShutdownTimeout:    l.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond),
		CoordinatorAddrs:   l.DialAddrList("COORDINATOR_ADDR", []string{"127.0.0.1:7001"}),
		MaxRetries:         l.Int("TASK_MAX_RETRIES", 3, 1, 100),
		ClaimTimeout:       l.Duration("TASK_CLAIM_TIMEOUT", 10*time.Minute, time.Second),
		Retention:          l.Duration("TASK_RETENTION", 7*24*time.Hour, time.Minute),
		DeadRetention:      l.Duration("TASK_DEAD_RETENTION", 30*24*time.Hour, time.Minute),
		ReapInterval:       l.Duration("TASK_REAP_INTERVAL", time.Second, 10*time.Millisecond),
		MetricTaskTypes:    taskTypeList(l.String("TASK_METRIC_TYPES", "")),
		MetricMaxTaskTypes: l.Int("TASK_METRIC_MAX_TYPES", 50, 0, 10000),
		TLS:                tlsconfig.Load(l, "", tlsconfig.Files{}),
		Auth:               auth.LoadConfig(l),
	}
}

// taskTypeList splits a comma-separated list, dropping blanks.
func taskTypeList(raw string) []string {
	var out []string
	for _, t := range strings.Split(raw, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
