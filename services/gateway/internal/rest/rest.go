// Package rest maps GAIA's REST routes onto the gRPC services behind the
// gateway with grpc-gateway. Every route goes through a gRPC client connection,
// so the backends' interceptors (validation, auth, error mapping) always run and
// the gateway turns gRPC codes into HTTP statuses by itself.
package rest

import (
	"bytes"
	"context"
	"fmt"
	"io"

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
// A backend call carries, as metadata, the request's authorization and the
// x-forwarded-host and x-forwarded-for that grpc-gateway derives, and no
// other header: grpc-gateway's default would add the "permanent" HTTP
// headers (Authorization again, Content-Type, User-Agent, Cookie …) as
// grpcgateway-<name>, which no GAIA backend reads, and which cost every
// call their encoding on the gateway and their decoding and copying on the
// backend (several per cent of a small request's CPU).
//
// opts are added after these (the gateway's request metrics use one).
func NewMux(ctx context.Context, c Conns, opts ...runtime.ServeMuxOption) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(append([]runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, Marshaler()),
		runtime.WithForwardResponseRewriter(WrapError),
		runtime.WithIncomingHeaderMatcher(forwardNoHeaders),
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

// forwardNoHeaders is the incoming header matcher: no header becomes
// metadata beyond the authorization and x-forwarded-* grpc-gateway always
// sets.
func forwardNoHeaders(string) (string, bool) { return "", false }

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

// NewDecoder parses a Body (a unary request's, read whole) with protojson
// alone. grpc-gateway's own decoder first scans the value with
// encoding/json to cut it out of the stream, then parses it again with
// protojson; for a 1-event RecordMetrics that scan and its buffers are about
// 5% of the gateway's CPU, and more for larger bodies. Any other reader (a
// stream's) gets that decoder.
func (m ndjson) NewDecoder(r io.Reader) runtime.Decoder {
	if b, ok := r.(*Body); ok {
		return &bodyDecoder{body: b, opts: m.UnmarshalOptions, slow: m.JSONPb}
	}
	return m.JSONPb.NewDecoder(r)
}

// Body is a request body the gateway has already read whole, as it does for
// every unary route (to bound its size); its decoder parses it in one pass.
type Body struct {
	*bytes.Reader
	data []byte
}

// NewBody makes data a request body.
func NewBody(data []byte) *Body { return &Body{Reader: bytes.NewReader(data), data: data} }

// Close does nothing: the body is in memory.
func (*Body) Close() error { return nil }

// bodyDecoder decodes a Body. When the whole body is one JSON value that
// protojson accepts, that is the answer grpc-gateway's decoder gives too
// (protojson is stricter than encoding/json, and refuses anything after the
// value). Otherwise (an empty body, bad JSON, trailing bytes, a non-message
// target) it hands over to grpc-gateway's decoder, unchanged, so that what
// is accepted and every error message stay as they were.
type bodyDecoder struct {
	body    *Body
	opts    protojson.UnmarshalOptions
	slow    *runtime.JSONPb
	tried   bool
	decoder runtime.Decoder // grpc-gateway's, once handed over
}

func (d *bodyDecoder) Decode(v any) error {
	if !d.tried {
		d.tried = true
		if m, ok := v.(proto.Message); ok && d.body.Len() == len(d.body.data) {
			if d.opts.Unmarshal(d.body.data, m) == nil {
				// Read: a further Decode gets io.EOF, as from grpc-gateway's.
				_, _ = d.body.Seek(0, io.SeekEnd)
				return nil
			}
			proto.Reset(m) // as grpc-gateway's decoder leaves it when the JSON does not parse
		}
	}
	if d.decoder == nil {
		d.decoder = d.slow.NewDecoder(d.body)
	}
	return d.decoder.Decode(v)
}

// WrapError gives a unary call's error the shape a stream's last line has,
// {"error": status}: grpc-gateway passes the google.rpc.Status of an error
// through the response rewriter before writing it.
func WrapError(_ context.Context, resp proto.Message) (any, error) {
	if st, ok := resp.(*spb.Status); ok {
		return map[string]proto.Message{"error": st}, nil
	}
	return resp, nil
}
