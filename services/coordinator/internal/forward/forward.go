// Package forward lets any coordinator node serve any RPC: a follower passes
// writes, reads and heartbeats on to the leader over gRPC, keeping one client
// connection per leader address. It owns those connections and the metadata
// that stops a request from being forwarded twice; it knows nothing of what
// the RPCs do.
package forward

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/metadata"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/grpcclient"
)

// ForwardedHeader marks a request a follower passed on; a node that is not
// the leader either answers it with UNAVAILABLE instead of forwarding again.
const ForwardedHeader = "gaia-forwarded-by"

// Leader locates the current leader.
type Leader interface {
	// Leading reports whether this node serves requests itself.
	Leading() bool
	// LeaderAddress is the leader's node id and gRPC address, if known.
	LeaderAddress() (id, grpcAddr string)
}

// Forwarder hands out connections to the leader.
type Forwarder struct {
	nodeID   string
	leader   Leader
	dialOpts []grpc.DialOption
	// Dial opens a connection to the leader's gRPC address; New sets
	// grpcclient.Dial, a node with its own resolver replaces it.
	Dial func(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error)

	mu        sync.Mutex
	conns     map[string]*grpc.ClientConn
	forwarded atomic.Uint64
}

// Forwarded is how many calls this node has passed on to the leader.
func (f *Forwarder) Forwarded() uint64 { return f.forwarded.Load() }

// New returns a forwarder for node nodeID; dialOpts (TLS) apply to every
// connection to a leader.
func New(nodeID string, leader Leader, dialOpts ...grpc.DialOption) *Forwarder {
	return &Forwarder{nodeID: nodeID, leader: leader, dialOpts: dialOpts, Dial: grpcclient.Dial, conns: map[string]*grpc.ClientConn{}}
}

// Route decides where a request goes: local is true when this node serves it;
// otherwise conn reaches the leader and ctx carries the forwarding metadata.
func (f *Forwarder) Route(ctx context.Context) (out context.Context, conn *grpc.ClientConn, local bool, err error) {
	if f.leader.Leading() {
		return ctx, nil, true, nil
	}
	_, addr := f.leader.LeaderAddress()
	if addr == "" || forwarded(ctx) {
		return ctx, nil, false, domainerr.NotLeader(addr)
	}
	conn, err = f.conn(addr)
	if err != nil {
		return ctx, nil, false, err
	}
	f.forwarded.Add(1)
	return outgoing(ctx, f.nodeID), conn, false, nil
}

func forwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(ForwardedHeader)) > 0
}

// outgoing carries the caller's credentials on to the leader and marks the
// request as forwarded.
func outgoing(ctx context.Context, nodeID string) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	out := metadata.Pairs(ForwardedHeader, nodeID)
	if auth := md.Get("authorization"); len(auth) > 0 {
		out.Set("authorization", auth...)
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// reconnect is how a connection to a leader address that went down is
// tried again: every 50 ms growing to at most ReconnectMaxDelay. gRPC's
// default grows to 120 s, so a node down for a minute that came back and
// won an election would, through this connection, stay unreachable long
// after it leads.
var reconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: ReconnectMaxDelay},
	MinConnectTimeout: 5 * time.Second,
})

// ReconnectMaxDelay bounds the wait between attempts to reach a leader
// address that refused or dropped the connection.
const ReconnectMaxDelay = time.Second

func (f *Forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.conns[addr]; ok {
		return c, nil
	}
	// No retries here: a forward to a leader that just died must fail at
	// once, so that the client retries and finds the new leader, rather than
	// the follower retrying the dead address.
	c, err := f.Dial(addr, append(append([]grpc.DialOption(nil), f.dialOpts...), grpc.WithDisableRetry(), reconnect)...)
	if err != nil {
		return nil, err
	}
	f.conns[addr] = c
	return c, nil
}

// Close closes every connection.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, c := range f.conns {
		_ = c.Close()
		delete(f.conns, addr)
	}
}
