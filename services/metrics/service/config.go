package service

import (
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/grpcserver"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// Config is the metrics service's configuration, read from the environment.
type Config struct {
	// ListenAddr is the gRPC listen address (METRICS_LISTEN_ADDR).
	ListenAddr string
	// HealthListenAddr, when set, also serves gRPC health alone, in plaintext
	// (METRICS_HEALTH_LISTEN_ADDR), for probes that cannot speak TLS; empty serves none.
	HealthListenAddr string
	// GRPCLimits bound the gRPC server's connections and streams
	// (GRPC_MAX_CONNECTIONS, GRPC_MAX_CONCURRENT_STREAMS,
	// GRPC_MAX_STREAMS_PER_CLIENT); zero fields take the defaults.
	GRPCLimits grpcserver.Limits
	// MaxReplyBytes bounds every reply (GRPC_MAX_REPLY_BYTES, default
	// 3 MiB): a list page stops short of it; 0 takes the default.
	MaxReplyBytes int
	// PrometheusAddr serves Prometheus metrics at /metrics
	// (METRICS_PROMETHEUS_LISTEN_ADDR).
	PrometheusAddr  string
	DatabaseURL     string
	ShutdownTimeout time.Duration
	// CoordinatorAddr is the coordinator that grants detector partition locks.
	CoordinatorAddr string
	// DashboardAddr is the dashboard service, asked which classrooms are
	// assigned to a teacher (DASHBOARD_ADDR).
	DashboardAddr string
	// TeacherClassroomsTTL is how long a teacher's classrooms, as the
	// dashboard listed them, are trusted (not a variable; default 5 s, so
	// an unassignment takes effect within seconds; tests shorten it).
	TeacherClassroomsTTL time.Duration
	// UsabilityMetricsEnabled accepts usability events (USABILITY_METRICS_ENABLED).
	UsabilityMetricsEnabled bool
	// FrustrationDetectionEnabled runs the detector (FRUSTRATION_DETECTION_ENABLED);
	// with it off, frustration history and settings stay readable.
	FrustrationDetectionEnabled bool
	// DetectionPartitions is how many partitions classrooms are hashed into
	// (DETECTION_PARTITIONS); every replica must use the same number.
	DetectionPartitions int
	// DetectionLockTTL is how long a partition stays with a replica that
	// stopped renewing its lock (DETECTION_LOCK_TTL).
	DetectionLockTTL time.Duration
	// JoinSecret is the coordinator cluster's join secret, needed to register
	// the detector's session (CLUSTER_JOIN_SECRET).
	JoinSecret string
	// DetectionPollInterval is how often the detector reads committed events
	// (not a variable; tests may change it).
	DetectionPollInterval time.Duration
	// GroupCommitWriters is how many groups of events may be in flight at
	// once, each on its own connection (not a variable; 0 takes the
	// default; benchmarks compare settings).
	GroupCommitWriters int
	// RollupInterval is how often, while events keep coming, committed
	// events are applied to the classroom rollups (not a variable; 0 takes
	// the default, DefaultRollupInterval).
	RollupInterval time.Duration
	// MaxBatch is the most events one RecordMetrics may carry (USABILITY_MAX_BATCH).
	MaxBatch int
	// Retention keeps raw events this long; older ones are rejected and their
	// partitions dropped (USABILITY_RETENTION).
	Retention time.Duration
	// PartitionInterval is how often partitions are created ahead and
	// dropped after the retention (not a variable; tests shorten it).
	PartitionInterval time.Duration
	// TLS is the gRPC port's certificate and the CA that verifies the
	// services it dials (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE); none
	// means plaintext.
	TLS tlsconfig.Files
	// Auth verifies callers and holds the service's own credential
	// (internal/auth).
	Auth auth.Config
}

// DefaultTeacherClassroomsTTL is how long a teacher's classroom list is
// cached: an unassignment in the dashboard takes effect within it, as a
// revocation does within the revocation poll.
const DefaultTeacherClassroomsTTL = 5 * time.Second

// DefaultRollupInterval is how often the classroom rollups take in the
// events committed since their last step while events keep coming.
const DefaultRollupInterval = 100 * time.Millisecond

// LoadConfig reads the metrics service's variables; problems are recorded in l.
func LoadConfig(l *config.Loader) Config {
	return Config{
		ListenAddr:                  l.ListenAddr("METRICS_LISTEN_ADDR", ":7003"),
		HealthListenAddr:            l.ListenAddr("METRICS_HEALTH_LISTEN_ADDR", ""),
		GRPCLimits:                  grpcserver.LoadLimits(l),
		MaxReplyBytes:               grpcserver.LoadMaxReplyBytes(l),
		PrometheusAddr:              l.ListenAddr("METRICS_PROMETHEUS_LISTEN_ADDR", ":9103"),
		DatabaseURL:                 pg.URL(l, "DATABASE_URL", pg.DefaultURL),
		ShutdownTimeout:             l.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond),
		CoordinatorAddr:             l.DialAddr("COORDINATOR_ADDR", "127.0.0.1:7001"),
		DashboardAddr:               l.DialAddr("DASHBOARD_ADDR", "127.0.0.1:7004"),
		TeacherClassroomsTTL:        DefaultTeacherClassroomsTTL,
		UsabilityMetricsEnabled:     l.Bool("USABILITY_METRICS_ENABLED", true),
		FrustrationDetectionEnabled: l.Bool("FRUSTRATION_DETECTION_ENABLED", true),
		DetectionPartitions:         l.Int("DETECTION_PARTITIONS", 16, 1, 1024),
		DetectionLockTTL:            l.Duration("DETECTION_LOCK_TTL", 5*time.Second, time.Second),
		JoinSecret:                  l.String("CLUSTER_JOIN_SECRET", ""),
		MaxBatch:                    l.Int("USABILITY_MAX_BATCH", 5000, 1, 20000),
		Retention:                   l.Duration("USABILITY_RETENTION", 30*24*time.Hour, time.Hour),
		PartitionInterval:           time.Hour,
		TLS:                         tlsconfig.Load(l, "", tlsconfig.Files{}),
		Auth:                        auth.LoadConfig(l),
	}
}
