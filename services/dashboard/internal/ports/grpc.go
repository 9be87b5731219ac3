// Package ports is the dashboard service's gRPC surface: handlers validate requests,
// convert between protobuf and the app's types, call one use case and return its
// errors for the shared interceptor to map. No SQL and no business rules here.
package ports

import (
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
)

// DashboardServer serves gaia.dashboard.v1.DashboardService. Its RPCs answer
// UNIMPLEMENTED until teacher alerts are built.
type DashboardServer struct {
	dashboardv1.UnimplementedDashboardServiceServer
}
