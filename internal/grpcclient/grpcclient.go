package grpcclient

import (
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/gaia-platform/gaia/internal/tlsconfig"
)

// LeaderTrailer is the trailer in which a GAIA server that is not the leader
// names the leader's address (grpcserver sets it from a domainerr.NotLeader
// error). It is defined here, beside the clients that read it, so that a
// client does not link the server package for one name.
const LeaderTrailer = "gaia-leader"

// Keepalive pings find a dead peer on an idle connection (a coordinator that
// vanished without closing its sockets) within KeepaliveTime plus
// KeepaliveTimeout. KeepaliveTime must stay at or above
// grpcserver.KeepaliveMinPingInterval, or servers hang up on the client.
const (
	KeepaliveTime    = 20 * time.Second
	KeepaliveTimeout = 5 * time.Second
)

// retryServiceConfig retries every method on UNAVAILABLE, which is what a
// restarting replica, a draining server or a follower answers; four
// attempts with backoff ride out a leader election. UNAVAILABLE means "did
// not run", with one exception: a coordinator write whose leader lost its
// leadership while committing it may still have been committed by the next
// leader; its repeat is answered by the state it finds (ALREADY_EXISTS for a
// registration, the same grant for a lock its session holds). Every other
// GAIA server must never return UNAVAILABLE after acting. gRPC retries a
// stream only until its first response message.
const retryServiceConfig = `{
	"methodConfig": [{
		"name": [{}],
		"retryPolicy": {
			"maxAttempts": 4,
			"initialBackoff": "0.1s",
			"maxBackoff": "1s",
			"backoffMultiplier": 2,
			"retryableStatusCodes": ["UNAVAILABLE"]
		}
	}]
}`

// Dial returns a client connection to target (host:port or any gRPC target
// URI). Like grpc.NewClient it does not connect until the first call. opts
// are applied after the defaults and so override them.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	defaults := []grpc.DialOption{
		// Plaintext unless the caller adds WithTLS.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                KeepaliveTime,
			Timeout:             KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultServiceConfig(retryServiceConfig),
	}
	conn, err := grpc.NewClient(target, append(defaults, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", target, err)
	}
	return conn, nil
}

// WithTLS dials with TLS, verifying servers against src's current CA and
// presenting its certificate when a server asks; a nil src leaves the
// connection plaintext. Pass it to Dial, or to anything taking dial options.
func WithTLS(src *tlsconfig.Source) grpc.DialOption {
	if src == nil {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithTransportCredentials(src.Credentials())
}
