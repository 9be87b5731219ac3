package grpcserver

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
)

// Limits bound what clients may hold open on a Server; zero fields take the
// defaults. 2,000 WatchSessions streams from one client were all accepted
// (+92 MB, 2,033 descriptors) before these existed.
type Limits struct {
	// MaxConnections is the most connections open at once
	// (GRPC_MAX_CONNECTIONS); one more is closed as soon as it is accepted,
	// so its client sees UNAVAILABLE and may try another replica.
	MaxConnections int
	// MaxConcurrentStreams is HTTP/2's cap on the calls in flight on one
	// connection (GRPC_MAX_CONCURRENT_STREAMS); a client's further calls
	// wait for a free one. It must leave room for the busiest connection:
	// a coordinator follower relays every heartbeat it serves to the leader
	// on one connection, and the gateway carries every REST call to a
	// backend on one.
	MaxConcurrentStreams uint32
	// MaxStreamsPerClient is the most streaming calls (heartbeats, watches,
	// subscriptions) one client may have open at once
	// (GRPC_MAX_STREAMS_PER_CLIENT); one more is refused with
	// RESOURCE_EXHAUSTED. A client is its credential when it presents one,
	// otherwise its address, so callers behind the gateway are each counted
	// by their own credential.
	MaxStreamsPerClient int
	// Uncounted names methods (/package.Service/Method) whose streams are
	// not counted against MaxStreamsPerClient: the coordinator's Heartbeat,
	// whose streams are bounded by the sessions allowed and arrive many
	// from one address when a follower or the gateway relays them.
	Uncounted []string
}

// Defaults of Limits.
const (
	DefaultMaxConnections       = 4096
	DefaultMaxConcurrentStreams = 10000
	DefaultMaxStreamsPerClient  = 1000
)

func (l *Limits) defaults() {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.MaxStreamsPerClient <= 0 {
		l.MaxStreamsPerClient = DefaultMaxStreamsPerClient
	}
}

// LoadLimits reads the limits every GAIA gRPC server shares from the
// environment; problems are recorded in l.
func LoadLimits(l *config.Loader) Limits {
	return Limits{
		MaxConnections:       l.Int("GRPC_MAX_CONNECTIONS", DefaultMaxConnections, 1, 1<<20),
		MaxConcurrentStreams: uint32(l.Int("GRPC_MAX_CONCURRENT_STREAMS", DefaultMaxConcurrentStreams, 1, 1<<20)),
		MaxStreamsPerClient:  l.Int("GRPC_MAX_STREAMS_PER_CLIENT", DefaultMaxStreamsPerClient, 1, 1<<20),
	}
}

// connLimitListener closes connections accepted beyond max open ones, at
// once rather than leaving them queued: a client then fails fast instead of
// hanging, and the server's descriptors stay bounded.
type connLimitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	log     *zap.Logger
	lastLog atomic.Int64 // unix nanoseconds of the last "refused" log
}

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			_ = c.Close()
			if now := time.Now().UnixNano(); now-l.lastLog.Load() > int64(10*time.Second) {
				l.lastLog.Store(now)
				l.log.Warn("connection refused: too many open connections", zap.Int64("max_connections", l.max), zap.String("peer", c.RemoteAddr().String()))
			}
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *connLimitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// streamLimiter counts each client's open streams.
type streamLimiter struct {
	max       int
	uncounted map[string]bool
	mu        sync.Mutex
	open      map[string]int
}

func newStreamLimiter(l Limits) *streamLimiter {
	sl := &streamLimiter{max: l.MaxStreamsPerClient, uncounted: map[string]bool{}, open: map[string]int{}}
	for _, m := range l.Uncounted {
		sl.uncounted[m] = true
	}
	return sl
}

func (s *Server) limitStreams(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	l := s.streams
	if l.uncounted[info.FullMethod] {
		return handler(srv, ss)
	}
	key := streamClient(ss)
	l.mu.Lock()
	if l.open[key] >= l.max {
		l.mu.Unlock()
		return status.Errorf(codes.ResourceExhausted, "too many open streams from this client: at most %d (GRPC_MAX_STREAMS_PER_CLIENT); close one first", l.max)
	}
	l.open[key]++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.open[key]--; l.open[key] == 0 {
			delete(l.open, key)
		}
		l.mu.Unlock()
	}()
	return handler(srv, ss)
}

// streamClient names who opened a stream: its credential when it has one
// (set by authStream, which runs first), else its address.
func streamClient(ss grpc.ServerStream) string {
	if p, ok := auth.FromContext(ss.Context()); ok && p.CredentialID != "" {
		return "credential " + p.CredentialID
	}
	if pr, ok := peer.FromContext(ss.Context()); ok && pr.Addr != nil {
		if host, _, err := net.SplitHostPort(pr.Addr.String()); err == nil {
			return "address " + host
		}
		return "address " + pr.Addr.String()
	}
	return "unknown"
}
