// Command dashboard runs GAIA's dashboard service: teacher alerts, classroom assignments and interventions.
// Configuration comes from the environment (see the README's table).
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/services/dashboard/service"
)

func main() {
	process.Main("dashboard", service.LoadConfig, func(ctx context.Context, cfg service.Config, log *zap.Logger) (process.Runner, error) {
		return service.New(ctx, cfg, log)
	})
}
