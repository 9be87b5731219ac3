package service

import (
	"time"

	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/pg"
)

// Config is the taskqueue service's configuration, read from the environment.
type Config struct {
	// ListenAddr is the gRPC listen address (TASKQUEUE_LISTEN_ADDR).
	ListenAddr      string
	DatabaseURL     string
	ShutdownTimeout time.Duration
	// CoordinatorAddr is the coordinator to follow for session events.
	CoordinatorAddr string
	// MaxRetries is the default max_attempts of a task (TASK_MAX_RETRIES).
	MaxRetries int
	// ClaimTimeout is the default lease of a claim (TASK_CLAIM_TIMEOUT).
	ClaimTimeout time.Duration
}

// LoadConfig reads the taskqueue service's variables; problems are recorded in l.
func LoadConfig(l *config.Loader) Config {
	return Config{
		ListenAddr:      l.ListenAddr("TASKQUEUE_LISTEN_ADDR", ":7002"),
		DatabaseURL:     l.PostgresURL("DATABASE_URL", pg.DefaultURL),
		ShutdownTimeout: l.Duration("SHUTDOWN_TIMEOUT", 10*time.Second, time.Millisecond),
		CoordinatorAddr: l.DialAddr("COORDINATOR_ADDR", "127.0.0.1:7001"),
		MaxRetries:      l.Int("TASK_MAX_RETRIES", 3, 1, 100),
		ClaimTimeout:    l.Duration("TASK_CLAIM_TIMEOUT", 10*time.Minute, time.Second),
	}
}
