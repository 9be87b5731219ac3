// Command gateway runs GAIA's REST edge: every /v1 route of the four services
// through grpc-gateway, the merged OpenAPI document at /openapi.json, /healthz
// and /readyz. Configuration comes from the environment (see the README's table).
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/process"
	"github.com/gaia-platform/gaia/services/gateway/service"
)

func main() {
	process.Main("gateway", service.LoadConfig, func(ctx context.Context, cfg service.Config, log *zap.Logger) (process.Runner, error) {
		return service.New(ctx, cfg, log)
	})
}
