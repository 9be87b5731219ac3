// Package ports is the coordinator's gRPC surface, one server per service
// (session_server.go, lock_server.go, cluster_server.go, auth_server.go): handlers validate
// requests, convert between protobuf and the app's types, call one use case
// and return its errors for the shared interceptor to map. A node that does
// not lead passes the request on to the leader unchanged (package forward).
// No Raft, no state store and no business rules here: ports depends on app
// and forward only.
package ports

import (
	"context"
	"slices"

	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/grpcserver"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
	"github.com/gaia-platform/gaia/services/coordinator/internal/forward"
)

// Servers holds the coordinator's gRPC services.
type Servers struct {
	App     *app.Coordinator
	Forward *forward.Forwarder
	// MaxReplyBytes bounds every reply (GRPC_MAX_REPLY_BYTES): list pages
	// and released lock keys stop short of it. 0 is
	// grpcserver.DefaultMaxReplyBytes.
	MaxReplyBytes int
}

// replyBudget is the byte budget of one reply.
func (p *Servers) replyBudget() *grpcserver.ReplyBudget {
	return grpcserver.NewReplyBudget(p.MaxReplyBytes)
}

// maxReleasedKeys is the most released lock keys a reply or event lists;
// the count says how many there were.
const maxReleasedKeys = 1000

// releasedKeys is the start of the released lock keys, in key order, that
// fits in budget (nil: only maxReleasedKeys applies).
func releasedKeys(keys []string, budget *grpcserver.ReplyBudget) []string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = keys[:min(len(keys), maxReleasedKeys)]
	if budget == nil {
		return keys
	}
	for i, k := range keys {
		if !budget.AddBytes(grpcserver.ElementSize(len(k))) {
			return keys[:i]
		}
	}
	return keys
}

// Register adds the services to s.
func (p *Servers) Register(s *grpc.Server) {
	coordinatorv1.RegisterSessionServiceServer(s, &sessionServer{Servers: p})
	coordinatorv1.RegisterLockServiceServer(s, &lockServer{Servers: p})
	coordinatorv1.RegisterClusterServiceServer(s, &clusterServer{Servers: p})
	coordinatorv1.RegisterAuthServiceServer(s, &authServer{Servers: p})
}

// serve answers a request here when this node leads (local) and passes it
// on to the leader unchanged otherwise (remote). It is the request's one
// leadership check; the use cases do not check again.
func serve[R any](ctx context.Context, f *forward.Forwarder, remote func(context.Context, *grpc.ClientConn) (R, error), local func() (R, error)) (R, error) {
	fctx, conn, isLocal, err := f.Route(ctx)
	if err != nil {
		var zero R
		return zero, err
	}
	if !isLocal {
		return remote(fctx, conn)
	}
	return local()
}
