package client

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
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
	// Token is the caller's credential, sent as "authorization: Bearer
	// <token>" on every call when set: a service credential for services, an
	// admin one for membership changes and credentials. Agent sessions need
	// none (their session token travels in each request).
	Token string
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
	auth     coordinatorv1.AuthServiceClient
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
		grpc.WithChainUnaryInterceptor(retryUnaryInterceptor(logger)),
		grpcclient.WithBearer(opts.Token),
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
		auth:     coordinatorv1.NewAuthServiceClient(conn),
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

// Cluster is the ClusterService; changes need an admin Token. Calls are
// retried on UNAVAILABLE.
func (c *Client) Cluster() coordinatorv1.ClusterServiceClient { return c.cluster }

// Auth is the AuthService: issuing and revoking credentials needs an admin
// Token; ListRevocations a service one.
func (c *Client) Auth() coordinatorv1.AuthServiceClient { return c.auth }

// Conn is the client's connection, for other clients of the same cluster.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }
