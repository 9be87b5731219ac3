// Package process runs one GAIA service as an operating-system process: it reads
// the configuration from the environment once, builds the logger, runs the
// service until SIGINT or SIGTERM, and turns the outcome into an exit code. It
// knows nothing of what a service does. Listen opens a service's gRPC and
// Prometheus metrics ports together.
package process

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/logging"
)

// Exit codes of a service process.
const (
	ExitOK        = 0
	ExitFailure   = 1
	ExitBadConfig = 2
)

// Runner is a service that has been built and runs until its context ends.
type Runner interface {
	Run(ctx context.Context) error
}

// Common is the configuration every service process shares.
type Common struct {
	LogLevel  string
	LogFormat string
}

// LoadCommon reads the shared variables. Services log JSON by default; the
// local launcher prefers console lines for people.
func LoadCommon(l *config.Loader, defaultFormat string) Common {
	return Common{
		LogLevel:  l.Enum("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat: l.Enum("LOG_FORMAT", defaultFormat, "json", "console"),
	}
}

// Main loads C with load, starts the service with start and runs it until a
// signal arrives. It never returns.
func Main[C any](name string, load func(*config.Loader) C, start func(ctx context.Context, cfg C, log *zap.Logger) (Runner, error)) {
	os.Exit(run(name, os.LookupEnv, os.Stderr, load, start))
}

func run[C any](name string, lookup func(string) (string, bool), stderr io.Writer, load func(*config.Loader) C, start func(context.Context, C, *zap.Logger) (Runner, error)) int {
	loader := config.NewLoader(lookup)
	common := LoadCommon(loader, "json")
	cfg := load(loader)
	if err := loader.Err(); err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", name, err)
		return ExitBadConfig
	}
	log, err := logging.New(common.LogLevel, common.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitBadConfig
	}
	log = log.Named(name)
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	svc, err := start(ctx, cfg, log)
	if err != nil {
		log.Error("service failed to start", zap.Error(err))
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitFailure
	}
	if err := svc.Run(ctx); err != nil {
		log.Error("service stopped with an error", zap.Error(err))
		return ExitFailure
	}
	log.Info("service stopped")
	return ExitOK
}
