package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// resolverScheme names the manual resolver that hands the configured addresses
// to the balancer. It is registered on the connection only, never globally.
const resolverScheme = "gaia-coordinator"

// Options configures a Client.
type Options struct {
	// Addrs are coordinator gRPC addresses (host:port); any node will do.
	Addrs []string
	// AdminToken is sent as "authorization: Bearer <token>" on ClusterService
	// calls when set.
	AdminToken string
	// Logger may be nil, which logs nothing.
	Logger *zap.Logger
	// DialOptions are added after the client's own, e.g. for tests.
	DialOptions []grpc.DialOption
}

// Client is a connection to the coordinator cluster. It is safe for
// concurrent use; close it when done.
type Client struct {
	conn     *grpc.ClientConn
	logger   *zap.Logger
	sessions coordinatorv1.SessionServiceClient
	locks    coordinatorv1.LockServiceClient
	cluster  coordinatorv1.ClusterServiceClient
}

// New builds a client over every address in opts.Addrs. It does not wait for
// a connection: the first call connects, and calls that find no reachable
// node are retried (see Options).
func New(opts Options) (*Client, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("coordinator client: no addresses")
	}
	endpoints := make([]resolver.Endpoint, 0, len(opts.Addrs))
	seen := make(map[string]bool, len(opts.Addrs))
	for _, a := range opts.Addrs {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("coordinator client: address %q: want host:port", a)
		}
		if seen[a] {
			continue
		}
		seen[a] = true
		// The host, not the channel's authority, is the name TLS verifies.
		endpoints = append(endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a, ServerName: host}}})
	}
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("coordinator_client")

	r := manual.NewBuilderWithScheme(resolverScheme)
	r.InitialState(resolver.State{Endpoints: endpoints})

	// Transport credentials and keepalive are internal/grpcclient's, as for
	// every GAIA client. The service config here replaces grpcclient's, so
	// gRPC's own retry policy is off: retryUnaryInterceptor retries instead,
	// within the call's deadline, and the two must not multiply.
	dialOpts := []grpc.DialOption{
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		// A node that comes back is found again within seconds, not the
		// default two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   5 * time.Second,
			},
			MinConnectTimeout: 10 * time.Second,
		}),
		grpc.WithChainUnaryInterceptor(
			adminTokenUnaryInterceptor(opts.AdminToken),
			retryUnaryInterceptor(logger),
		),
		grpc.WithChainStreamInterceptor(adminTokenStreamInterceptor(opts.AdminToken)),
	}
	dialOpts = append(dialOpts, opts.DialOptions...)

	conn, err := grpcclient.Dial(resolverScheme+":///coordinator", dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("coordinator client: %w", err)
	}
	return &Client{
		conn:     conn,
		logger:   logger,
		sessions: coordinatorv1.NewSessionServiceClient(conn),
		locks:    coordinatorv1.NewLockServiceClient(conn),
		cluster:  coordinatorv1.NewClusterServiceClient(conn),
	}, nil
}

// Close closes the connection. Streams still open end with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

// closed reports whether Close was called; a stream that failed because of it
// is not worth reopening.
func (c *Client) closed() bool { return c.conn.GetState() == connectivity.Shutdown }

// Sessions is the SessionService. Unary calls are retried on UNAVAILABLE; for
// the streams prefer WatchSessions and StartHeartbeat, which reconnect.
func (c *Client) Sessions() coordinatorv1.SessionServiceClient { return c.sessions }

// Locks is the LockService. Calls are retried on UNAVAILABLE.
func (c *Client) Locks() coordinatorv1.LockServiceClient { return c.locks }

// Cluster is the ClusterService, called with the admin token when one was
// given. Calls are retried on UNAVAILABLE.
func (c *Client) Cluster() coordinatorv1.ClusterServiceClient { return c.cluster }

// clusterMethodPrefix starts the full method name of every ClusterService RPC.
var clusterMethodPrefix = "/" + coordinatorv1.ClusterService_ServiceDesc.ServiceName + "/"

// withAdminToken adds the admin credential to calls of the ClusterService, and
// only to those: the token must not travel to services that have no business
// seeing it.
func withAdminToken(ctx context.Context, token, method string) context.Context {
	if token == "" || !strings.HasPrefix(method, clusterMethodPrefix) {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func adminTokenUnaryInterceptor(token string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(withAdminToken(ctx, token, method), method, req, reply, cc, opts...)
	}
}

func adminTokenStreamInterceptor(token string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(withAdminToken(ctx, token, method), desc, cc, method, opts...)
	}
}
