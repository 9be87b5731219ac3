// Command metrics runs GAIA's metrics service: usability metrics in, frustration detected.
// Configuration comes from the environment (see the README's table).
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/services/metrics/service"
)

func main() {
	process.Main("metrics", service.LoadConfig, func(ctx context.Context, cfg service.Config, log *zap.Logger) (process.Runner, error) {
		return service.New(ctx, cfg, log)
	})
}
