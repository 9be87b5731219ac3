// Command coordinator runs GAIA's coordinator: the Raft-replicated registry of
// agent sessions, their liveness and their locks. Configuration comes from the
// environment (see the README's table).
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/services/coordinator/service"
)

func main() {
	process.Main("coordinator", service.LoadConfig, func(ctx context.Context, cfg service.Config, log *zap.Logger) (process.Runner, error) {
		return service.New(ctx, cfg, log)
	})
}
