// Package ports is the metrics service's gRPC surface: handlers validate requests,
// convert between protobuf and the app's types, call one use case and return its
// errors for the shared interceptor to map. No SQL and no business rules here.
package ports

import (
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

// MetricsServer serves gaia.metrics.v1.MetricsService. Its RPCs answer
// UNIMPLEMENTED until usability metrics are built.
type MetricsServer struct {
	metricsv1.UnimplementedMetricsServiceServer
}
