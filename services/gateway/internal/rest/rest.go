// Package rest maps GAIA's REST routes onto the gRPC services behind the
// gateway with grpc-gateway. Every route goes through a gRPC client connection,
// so the backends' interceptors (validation, auth, error mapping) always run and
// the gateway turns gRPC codes into HTTP statuses by itself.
package rest

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// Conns are the client connections to the backends.
type Conns struct {
	Coordinator *grpc.ClientConn
	TaskQueue   *grpc.ClientConn
	Metrics     *grpc.ClientConn
	Dashboard   *grpc.ClientConn
}

// NewMux returns a handler for every /v1 route. JSON uses the proto field names
// (snake_case), as the OpenAPI document does, and shows fields at their zero
// value so that clients see, say, "duplicate": false.
func NewMux(ctx context.Context, c Conns) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	registrations := []struct {
		name     string
		register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
		conn     *grpc.ClientConn
	}{
		{"SessionService", coordinatorv1.RegisterSessionServiceHandler, c.Coordinator},
		{"LockService", coordinatorv1.RegisterLockServiceHandler, c.Coordinator},
		{"ClusterService", coordinatorv1.RegisterClusterServiceHandler, c.Coordinator},
		{"TaskService", taskqueuev1.RegisterTaskServiceHandler, c.TaskQueue},
		{"LessonService", taskqueuev1.RegisterLessonServiceHandler, c.TaskQueue},
		{"MetricsService", metricsv1.RegisterMetricsServiceHandler, c.Metrics},
		{"DashboardService", dashboardv1.RegisterDashboardServiceHandler, c.Dashboard},
	}
	for _, r := range registrations {
		if err := r.register(ctx, mux, r.conn); err != nil {
			return nil, fmt.Errorf("register %s routes: %w", r.name, err)
		}
	}
	return mux, nil
}
