// Package rest maps GAIA's REST routes onto the gRPC services behind the
// gateway with grpc-gateway. Every route goes through a gRPC client connection,
// so the backends' interceptors (validation, auth, error mapping) always run and
// the gateway turns gRPC codes into HTTP statuses by itself.
package rest

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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

// NewMux returns a handler for every /v1 route, speaking JSON exactly as the
// OpenAPI document (proto/openapi.json) describes it:
//   - proto field names (snake_case);
//   - scalars, enums, lists and maps always written, even at their zero value
//     (clients see "duplicate": false), but an unset message field left out
//     rather than written as null (EmitDefaultValues, not EmitUnpopulated), so
//     that a field is either absent or of its documented type;
//   - every error, unary or ending a stream, as {"error": <google.rpc.Status>};
//   - streams as application/x-ndjson, one {"result": …} per line.
//
// opts are added after these (the gateway's request metrics use one).
func NewMux(ctx context.Context, c Conns, opts ...runtime.ServeMuxOption) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(append([]runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, Marshaler()),
		runtime.WithForwardResponseRewriter(WrapError),
	}, opts...)...)
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

// Marshaler is the gateway's JSON marshaler; exported for the tests that
// check the wire against the document.
func Marshaler() runtime.Marshaler {
	return ndjson{&runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

// ndjson is the JSON marshaler that labels streams as newline-delimited JSON.
type ndjson struct{ *runtime.JSONPb }

// StreamContentType is the media type of a server stream's answer.
func (ndjson) StreamContentType(any) string { return "application/x-ndjson" }

// WrapError gives a unary call's error the shape a stream's last line has,
// {"error": status}: grpc-gateway passes the google.rpc.Status of an error
// through the response rewriter before writing it.
func WrapError(_ context.Context, resp proto.Message) (any, error) {
	if st, ok := resp.(*spb.Status); ok {
		return map[string]proto.Message{"error": st}, nil
	}
	return resp, nil
}
