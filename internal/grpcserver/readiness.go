package grpcserver

import (
	"context"
	"time"

	"go.uber.org/zap"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The gRPC health service names every GAIA service answers for its probes.
// ReadinessService is SERVING only while the service can do its work (its
// dependencies answer); LivenessService is SERVING from start to shutdown,
// so that a service waiting for a dependency is taken out of rotation but
// never restarted for it (a restart would not bring the dependency back).
const (
	ReadinessService = "readiness"
	LivenessService  = "liveness"
)

// ReadinessPollInterval is how often WatchReadiness asks the dependencies,
// and bounds each check.
const ReadinessPollInterval = time.Second

// Dependency is one thing a service needs in order to serve; Check returns
// nil while it answers.
type Dependency struct {
	Name  string
	Check func(context.Context) error
}

// WatchReadiness keeps ReadinessService current until ctx ends: SERVING
// while every dependency answers within ReadinessPollInterval, NOT_SERVING
// otherwise (from the start, until the first check passes). It sets
// LivenessService SERVING. A change is logged with the dependency at fault.
func (s *Server) WatchReadiness(ctx context.Context, deps ...Dependency) {
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ReadinessService, healthpb.HealthCheckResponse_NOT_SERVING)
	tick := time.NewTicker(ReadinessPollInterval)
	defer tick.Stop()
	ready, first := false, true
	for {
		var failed string
		var cause error
		for _, d := range deps {
			cctx, cancel := context.WithTimeout(ctx, ReadinessPollInterval)
			err := d.Check(cctx)
			cancel()
			if err != nil {
				failed, cause = d.Name, err
				break
			}
		}
		if ctx.Err() != nil {
			return
		}
		if now := failed == ""; now != ready || first {
			ready, first = now, false
			if ready {
				s.health.SetServingStatus(ReadinessService, healthpb.HealthCheckResponse_SERVING)
				s.log.Info("ready: every dependency answers", zap.String("server", s.name))
			} else {
				s.health.SetServingStatus(ReadinessService, healthpb.HealthCheckResponse_NOT_SERVING)
				s.log.Warn("not ready: a dependency does not answer", zap.String("server", s.name), zap.String("dependency", failed), zap.Error(cause))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// HealthDependency checks a gRPC backend by asking its health service for
// service (ReadinessService for another GAIA service).
func HealthDependency(name string, client healthpb.HealthClient, service string) Dependency {
	return Dependency{Name: name, Check: func(ctx context.Context) error {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return err
		}
		if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
			return &notServing{status: st}
		}
		return nil
	}}
}

type notServing struct {
	status healthpb.HealthCheckResponse_ServingStatus
}

func (e *notServing) Error() string { return "health: " + e.status.String() }
