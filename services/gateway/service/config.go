package service

import (
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// Config is the gateway's configuration, read from the environment.
type Config struct {
	// ListenAddr serves REST, the OpenAPI document, health endpoints and the
	// gateway's own gRPC health and reflection (GATEWAY_LISTEN_ADDR).
	ListenAddr string
	// MetricsAddr serves Prometheus metrics at /metrics
	// (GATEWAY_PROMETHEUS_LISTEN_ADDR), apart from the public port; empty serves none.
	MetricsAddr     string
	ShutdownTimeout time.Duration
	Backends        Backends
	// TLS serves HTTPS (and gRPC health over TLS) with TLS_CERT_FILE and
	// TLS_KEY_FILE, and verifies the backends with TLS_CA_FILE; none means
	// plain HTTP and plaintext gRPC.
	TLS tlsconfig.Files
	// HTTP bounds what one client may hold of the gateway: zero fields take
	// their defaults.
	HTTP HTTPLimits
	// Auth: the gateway verifies credentials only to count each against its
	// own rate limit (AUTH_RATE_LIMIT, AUTH_RATE_BURST); the backends decide
	// what a credential may do. The Authorization header passes through.
	Auth auth.Config
}

// HTTPLimits bound request bodies and connections.
type HTTPLimits struct {
	// MaxBodyBytes bounds a REST request body, refused with 413 before any
	// backend sees it (GATEWAY_MAX_BODY_BYTES, default MaxBodyBytes). On the
	// REST heartbeat stream it bounds each message (line) instead.
	MaxBodyBytes int64
	// ReadTimeout bounds reading a request, headers and body
	// (GATEWAY_READ_TIMEOUT, default 60s). Streams (the REST heartbeat,
	// watches and subscriptions, gRPC) are exempt once their headers are read:
	// a stream lasts as long as it is used.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection, or an HTTP/2 one without
	// streams, idle this long (GATEWAY_IDLE_TIMEOUT, default 60s).
	IdleTimeout time.Duration
}

// Defaults of HTTPLimits.
const (
	DefaultReadTimeout = 60 * time.Second
	DefaultIdleTimeout = 60 * time.Second
)

func (h *HTTPLimits) defaults() {
	if h.MaxBodyBytes <= 0 {
		h.MaxBodyBytes = MaxBodyBytes
	}
	if h.ReadTimeout <= 0 {
		h.ReadTimeout = DefaultReadTimeout
	}
	if h.IdleTimeout <= 0 {
		h.IdleTimeout = DefaultIdleTimeout
	}
}

// Backends are the gRPC addresses of the four services behind the gateway.
type Backends struct {
	Coordinator string
	TaskQueue   string
	Metrics     string
	Dashboard   string
}

// LoadConfig reads the gateway's variables; problems are recorded in l.
func LoadConfig(l *config.Loader) Config {
	return Config{
		ListenAddr:      l.ListenAddr("GATEWAY_LISTEN_ADDR", ":8080"),
		MetricsAddr:     l.ListenAddr("GATEWAY_PROMETHEUS_LISTEN_ADDR", ""),
		ShutdownTimeout: l.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond),
		Backends: Backends{
			Coordinator: l.DialAddr("COORDINATOR_ADDR", "127.0.0.1:7001"),
			TaskQueue:   l.DialAddr("TASKQUEUE_ADDR", "127.0.0.1:7002"),
			Metrics:     l.DialAddr("METRICS_ADDR", "127.0.0.1:7003"),
			Dashboard:   l.DialAddr("DASHBOARD_ADDR", "127.0.0.1:7004"),
		},
		HTTP: HTTPLimits{
			MaxBodyBytes: int64(l.Int("GATEWAY_MAX_BODY_BYTES", MaxBodyBytes, 1<<10, 1<<30)),
			ReadTimeout:  l.Duration("GATEWAY_READ_TIMEOUT", DefaultReadTimeout, time.Second),
			IdleTimeout:  l.Duration("GATEWAY_IDLE_TIMEOUT", DefaultIdleTimeout, time.Second),
		},
		TLS:  tlsconfig.Load(l, "", tlsconfig.Files{}),
		Auth: auth.LoadConfig(l),
	}
}
