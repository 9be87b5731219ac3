// Command taskqueue runs GAIA's taskqueue service: the durable task queue of lessons, tasks and fenced claims.
// Configuration comes from the environment (see the README's table).
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/services/taskqueue/service"
)

func main() {
	process.Main("taskqueue", service.LoadConfig, func(ctx context.Context, cfg service.Config, log *zap.Logger) (process.Runner, error) {
		return service.New(ctx, cfg, log)
	})
}
