// Package ports is the coordinator's gRPC surface: handlers validate requests,
// convert between protobuf and the app's types, call one use case and return
// its errors for the shared interceptor to map. A node that does not lead
// passes the request on to the leader unchanged. No Raft and no business
// rules here.
package ports

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
	"github.com/gaia-platform/gaia/services/coordinator/internal/forward"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// serve answers a request here when this node leads (local) and passes it
// on to the leader unchanged otherwise (remote).
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

// Servers holds the coordinator's three gRPC services.
type Servers struct {
	App     *app.Coordinator
	Forward *forward.Forwarder
}

// Register adds the three services to s.
func (p *Servers) Register(s *grpc.Server) {
	coordinatorv1.RegisterSessionServiceServer(s, &sessionServer{Servers: p})
	coordinatorv1.RegisterLockServiceServer(s, &lockServer{Servers: p})
	coordinatorv1.RegisterClusterServiceServer(s, &clusterServer{Servers: p})
}

type sessionServer struct {
	coordinatorv1.UnimplementedSessionServiceServer
	*Servers
}

func (s *sessionServer) RegisterSession(ctx context.Context, req *coordinatorv1.RegisterSessionRequest) (*coordinatorv1.RegisterSessionResponse, error) {
	in, err := registerInput(req)
	if err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.RegisterSessionResponse, error) {
		return coordinatorv1.NewSessionServiceClient(conn).RegisterSession(fctx, req)
	}, func() (*coordinatorv1.RegisterSessionResponse, error) {
		r, err := s.App.RegisterSession(ctx, in)
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.RegisterSessionResponse{
			Session:           sessionViewToProto(r.Session),
			SessionToken:      r.Token,
			HeartbeatInterval: durationpb.New(r.HeartbeatInterval),
			LeaseTtl:          durationpb.New(r.LeaseTTL),
		}, nil
	})
}

// Heartbeat answers each beat itself while this node leads, and otherwise
// relays it over a stream of its own to the leader, re-opened when the leader
// changes, so that the client's stream survives leader changes.
func (s *sessionServer) Heartbeat(stream coordinatorv1.SessionService_HeartbeatServer) error {
	ctx := stream.Context()
	var relay coordinatorv1.SessionService_HeartbeatClient
	var relayCancel context.CancelFunc
	closeRelay := func() {
		if relay != nil {
			_ = relay.CloseSend()
			relayCancel()
			relay = nil
		}
	}
	defer closeRelay()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
			return err
		}
		if len(req.GetActivity()) > maxActivityLen {
			return domainerr.Invalid("activity", "must be at most 256 characters")
		}
		fctx, conn, local, err := s.Forward.Route(ctx)
		if err != nil {
			return err
		}
		var resp *coordinatorv1.HeartbeatResponse
		if local {
			closeRelay()
			ack, err := s.App.Heartbeat(ctx, app.HeartbeatInput{SessionID: req.GetSessionId(), Token: req.GetSessionToken(), TaskCount: req.GetCurrentTaskCount(), Activity: req.GetActivity()})
			if err != nil {
				return err
			}
			resp = ackToProto(ack)
		} else {
			if relay == nil {
				rctx, cancel := context.WithCancel(fctx)
				relay, err = coordinatorv1.NewSessionServiceClient(conn).Heartbeat(rctx)
				if err != nil {
					cancel()
					return err
				}
				relayCancel = cancel
			}
			if err := relay.Send(req); err != nil {
				closeRelay()
				return relayError(relay, err)
			}
			if resp, err = relay.Recv(); err != nil {
				closeRelay()
				return err
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// relayError is the leader's status when a send fails because the leader
// ended the stream.
func relayError(_ coordinatorv1.SessionService_HeartbeatClient, err error) error {
	if errors.Is(err, io.EOF) {
		return domainerr.New(domainerr.Unavailable, "leader ended the heartbeat relay; reconnect")
	}
	return err
}

func ackToProto(a app.HeartbeatAck) *coordinatorv1.HeartbeatResponse {
	return &coordinatorv1.HeartbeatResponse{
		LeaseExpiresAt:    timestamp(a.LeaseExpiresAt),
		Leader:            &coordinatorv1.LeaderInfo{NodeId: a.LeaderID, GrpcAddress: a.LeaderAddress},
		Status:            statusToProto[a.Status],
		HeartbeatInterval: durationpb.New(a.HeartbeatInterval),
	}
}

func (s *sessionServer) GetSession(ctx context.Context, req *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
	switch {
	case req.GetSessionId() == "" && req.GetName() == "":
		return nil, domainerr.Invalid("session_id", "give session_id or name")
	case req.GetSessionId() != "" && req.GetName() != "":
		return nil, domainerr.Invalid("name", "give session_id or name, not both")
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.GetSessionResponse, error) {
		return coordinatorv1.NewSessionServiceClient(conn).GetSession(fctx, req)
	}, func() (*coordinatorv1.GetSessionResponse, error) {
		v, err := s.App.GetSession(ctx, req.GetSessionId(), req.GetName())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.GetSessionResponse{Session: sessionViewToProto(v)}, nil
	})
}

func (s *sessionServer) ListSessions(ctx context.Context, req *coordinatorv1.ListSessionsRequest) (*coordinatorv1.ListSessionsResponse, error) {
	f := app.SessionFilter{AvailableOnly: req.GetAvailableOnly(), Labels: req.GetLabels()}
	var err error
	if f.Limit, err = reqfield.PageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	for _, st := range req.GetStatuses() {
		v, ok := statusToState[st]
		if !ok {
			return nil, domainerr.Invalid("statuses", "unknown status "+st.String())
		}
		f.Statuses = append(f.Statuses, v)
	}
	for _, t := range req.GetTiers() {
		v, ok := tierToState[t]
		if !ok {
			return nil, domainerr.Invalid("tiers", "unknown tier "+t.String())
		}
		f.Tiers = append(f.Tiers, v)
	}
	for _, p := range req.GetProviders() {
		v, ok := providerToState[p]
		if !ok {
			return nil, domainerr.Invalid("providers", "unknown provider "+p.String())
		}
		f.Providers = append(f.Providers, v)
	}
	after, err := reqfield.ParsePageToken(req.GetPageToken(), 2)
	if err != nil {
		return nil, err
	}
	if after != nil {
		f.AfterName, f.AfterID = after[0], after[1]
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.ListSessionsResponse, error) {
		return coordinatorv1.NewSessionServiceClient(conn).ListSessions(fctx, req)
	}, func() (*coordinatorv1.ListSessionsResponse, error) {
		views, more, err := s.App.ListSessions(ctx, f)
		if err != nil {
			return nil, err
		}
		resp := &coordinatorv1.ListSessionsResponse{Sessions: make([]*coordinatorv1.Session, 0, len(views))}
		for _, v := range views {
			resp.Sessions = append(resp.Sessions, sessionViewToProto(v))
		}
		if more && len(views) > 0 {
			last := views[len(views)-1]
			resp.NextPageToken = reqfield.PageToken(last.Name, last.ID)
		}
		return resp, nil
	})
}

func (s *sessionServer) DeregisterSession(ctx context.Context, req *coordinatorv1.DeregisterSessionRequest) (*coordinatorv1.DeregisterSessionResponse, error) {
	if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.DeregisterSessionResponse, error) {
		return coordinatorv1.NewSessionServiceClient(conn).DeregisterSession(fctx, req)
	}, func() (*coordinatorv1.DeregisterSessionResponse, error) {
		v, released, err := s.App.DeregisterSession(ctx, req.GetSessionId(), req.GetSessionToken())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.DeregisterSessionResponse{Session: sessionViewToProto(v), ReleasedLockKeys: released}, nil
	})
}

func (s *sessionServer) VerifySession(ctx context.Context, req *coordinatorv1.VerifySessionRequest) (*coordinatorv1.VerifySessionResponse, error) {
	if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.VerifySessionResponse, error) {
		return coordinatorv1.NewSessionServiceClient(conn).VerifySession(fctx, req)
	}, func() (*coordinatorv1.VerifySessionResponse, error) {
		v, err := s.App.VerifySession(ctx, req.GetSessionId(), req.GetSessionToken())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.VerifySessionResponse{Session: sessionViewToProto(v)}, nil
	})
}

// WatchSessions is served from this node's own copy of the state: followers
// apply the same committed events, so a watch needs no leader.
func (s *sessionServer) WatchSessions(req *coordinatorv1.WatchSessionsRequest, stream coordinatorv1.SessionService_WatchSessionsServer) error {
	var types []state.EventType
	for _, t := range req.GetTypes() {
		v, ok := eventToState[t]
		if !ok {
			return domainerr.Invalid("types", "unknown event type "+t.String())
		}
		types = append(types, v)
	}
	return s.App.WatchSessions(stream.Context(), req.GetAfterIndex(), types, func(e state.Event) error {
		return stream.Send(&coordinatorv1.WatchSessionsResponse{Event: eventToProto(e)})
	})
}

type lockServer struct {
	coordinatorv1.UnimplementedLockServiceServer
	*Servers
}

func (s *lockServer) AcquireLock(ctx context.Context, req *coordinatorv1.AcquireLockRequest) (*coordinatorv1.AcquireLockResponse, error) {
	if err := validateLockKey(req.GetKey()); err != nil {
		return nil, err
	}
	if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
		return nil, err
	}
	if req.GetTtl() == nil {
		return nil, domainerr.Invalid("ttl", "is required")
	}
	ttl, err := reqfield.Duration("ttl", req.GetTtl(), 0, minLockTTL, maxLockTTL)
	if err != nil {
		return nil, err
	}
	wait, err := reqfield.Duration("wait_timeout", req.GetWaitTimeout(), 0, 0, maxLockWait)
	if err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.AcquireLockResponse, error) {
		return coordinatorv1.NewLockServiceClient(conn).AcquireLock(fctx, req)
	}, func() (*coordinatorv1.AcquireLockResponse, error) {
		l, err := s.App.AcquireLock(ctx, req.GetKey(), req.GetSessionId(), req.GetSessionToken(), ttl, wait)
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.AcquireLockResponse{Lock: lockToProto(l)}, nil
	})
}

func (s *lockServer) RenewLock(ctx context.Context, req *coordinatorv1.RenewLockRequest) (*coordinatorv1.RenewLockResponse, error) {
	if err := validateLockKey(req.GetKey()); err != nil {
		return nil, err
	}
	if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
		return nil, err
	}
	if req.GetFencingToken() == 0 {
		return nil, domainerr.Invalid("fencing_token", "is required")
	}
	ttl, err := reqfield.Duration("ttl", req.GetTtl(), 0, minLockTTL, maxLockTTL)
	if err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.RenewLockResponse, error) {
		return coordinatorv1.NewLockServiceClient(conn).RenewLock(fctx, req)
	}, func() (*coordinatorv1.RenewLockResponse, error) {
		l, err := s.App.RenewLock(ctx, req.GetKey(), req.GetSessionId(), req.GetSessionToken(), req.GetFencingToken(), ttl)
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.RenewLockResponse{Lock: lockToProto(l)}, nil
	})
}

func (s *lockServer) ReleaseLock(ctx context.Context, req *coordinatorv1.ReleaseLockRequest) (*coordinatorv1.ReleaseLockResponse, error) {
	if err := validateLockKey(req.GetKey()); err != nil {
		return nil, err
	}
	if err := reqfield.SessionRef(req.GetSessionId(), req.GetSessionToken()); err != nil {
		return nil, err
	}
	if req.GetFencingToken() == 0 {
		return nil, domainerr.Invalid("fencing_token", "is required")
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.ReleaseLockResponse, error) {
		return coordinatorv1.NewLockServiceClient(conn).ReleaseLock(fctx, req)
	}, func() (*coordinatorv1.ReleaseLockResponse, error) {
		if err := s.App.ReleaseLock(ctx, req.GetKey(), req.GetSessionId(), req.GetSessionToken(), req.GetFencingToken()); err != nil {
			return nil, err
		}
		return &coordinatorv1.ReleaseLockResponse{}, nil
	})
}

func (s *lockServer) GetLock(ctx context.Context, req *coordinatorv1.GetLockRequest) (*coordinatorv1.GetLockResponse, error) {
	if err := validateLockKey(req.GetKey()); err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.GetLockResponse, error) {
		return coordinatorv1.NewLockServiceClient(conn).GetLock(fctx, req)
	}, func() (*coordinatorv1.GetLockResponse, error) {
		l, err := s.App.GetLock(ctx, req.GetKey())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.GetLockResponse{Lock: lockToProto(l)}, nil
	})
}

func (s *lockServer) ListLocks(ctx context.Context, req *coordinatorv1.ListLocksRequest) (*coordinatorv1.ListLocksResponse, error) {
	f := app.LockFilter{Prefix: req.GetPrefix(), OwnerID: req.GetOwnerSessionId()}
	var err error
	if f.Limit, err = reqfield.PageSize(req.GetPageSize()); err != nil {
		return nil, err
	}
	if len(f.Prefix) > 512 {
		return nil, domainerr.Invalid("prefix", "must be at most 512 bytes")
	}
	after, err := reqfield.ParsePageToken(req.GetPageToken(), 1)
	if err != nil {
		return nil, err
	}
	if after != nil {
		f.AfterKey = after[0]
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.ListLocksResponse, error) {
		return coordinatorv1.NewLockServiceClient(conn).ListLocks(fctx, req)
	}, func() (*coordinatorv1.ListLocksResponse, error) {
		locks, more, err := s.App.ListLocks(ctx, f)
		if err != nil {
			return nil, err
		}
		resp := &coordinatorv1.ListLocksResponse{Locks: make([]*coordinatorv1.Lock, 0, len(locks))}
		for _, l := range locks {
			resp.Locks = append(resp.Locks, lockToProto(l))
		}
		if more && len(locks) > 0 {
			resp.NextPageToken = reqfield.PageToken(locks[len(locks)-1].Key)
		}
		return resp, nil
	})
}

type clusterServer struct {
	coordinatorv1.UnimplementedClusterServiceServer
	*Servers
}

// GetClusterStatus is answered by whichever node is asked, from its own view.
func (s *clusterServer) GetClusterStatus(ctx context.Context, _ *coordinatorv1.GetClusterStatusRequest) (*coordinatorv1.GetClusterStatusResponse, error) {
	st, err := s.App.Status(ctx)
	if err != nil {
		return nil, err
	}
	resp := &coordinatorv1.GetClusterStatusResponse{
		Term:         st.Term,
		CommitIndex:  st.CommitIndex,
		AppliedIndex: st.AppliedIndex,
		LastLogIndex: st.LastLogIndex,
		AnsweredBy:   st.AnsweredBy,
		Sessions:     int64(st.Sessions),
		Locks:        int64(st.Locks),
		Nodes:        nodesToProto(st.Nodes),
	}
	if st.LeaderID != "" {
		resp.Leader = &coordinatorv1.LeaderInfo{NodeId: st.LeaderID, RaftAddress: st.LeaderAddress, GrpcAddress: st.LeaderGRPCAddress}
	}
	if ss := st.LastSnapshot; ss != nil {
		resp.LastSnapshot = &coordinatorv1.Snapshot{Id: ss.ID, Index: ss.Index, Term: ss.Term, SizeBytes: ss.Size, TakenAt: timestamp(ss.TakenAt)}
	}
	return resp, nil
}

func (s *clusterServer) AddVoter(ctx context.Context, req *coordinatorv1.AddVoterRequest) (*coordinatorv1.AddVoterResponse, error) {
	if err := s.App.CheckAdmin(bearer(ctx)); err != nil {
		return nil, err
	}
	if req.GetNodeId() == "" {
		return nil, domainerr.Invalid("node_id", "must not be empty")
	}
	if err := validateHostPort("raft_address", req.GetRaftAddress(), true); err != nil {
		return nil, err
	}
	if err := validateHostPort("grpc_address", req.GetGrpcAddress(), false); err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.AddVoterResponse, error) {
		return coordinatorv1.NewClusterServiceClient(conn).AddVoter(fctx, req)
	}, func() (*coordinatorv1.AddVoterResponse, error) {
		nodes, err := s.App.AddVoter(ctx, req.GetNodeId(), req.GetRaftAddress(), req.GetGrpcAddress())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.AddVoterResponse{Nodes: nodesToProto(nodes)}, nil
	})
}

func (s *clusterServer) RemoveServer(ctx context.Context, req *coordinatorv1.RemoveServerRequest) (*coordinatorv1.RemoveServerResponse, error) {
	if err := s.App.CheckAdmin(bearer(ctx)); err != nil {
		return nil, err
	}
	if req.GetNodeId() == "" {
		return nil, domainerr.Invalid("node_id", "must not be empty")
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.RemoveServerResponse, error) {
		return coordinatorv1.NewClusterServiceClient(conn).RemoveServer(fctx, req)
	}, func() (*coordinatorv1.RemoveServerResponse, error) {
		nodes, err := s.App.RemoveServer(ctx, req.GetNodeId())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.RemoveServerResponse{Nodes: nodesToProto(nodes)}, nil
	})
}

func (s *clusterServer) TransferLeadership(ctx context.Context, req *coordinatorv1.TransferLeadershipRequest) (*coordinatorv1.TransferLeadershipResponse, error) {
	if err := s.App.CheckAdmin(bearer(ctx)); err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.TransferLeadershipResponse, error) {
		return coordinatorv1.NewClusterServiceClient(conn).TransferLeadership(fctx, req)
	}, func() (*coordinatorv1.TransferLeadershipResponse, error) {
		id, addr, err := s.App.TransferLeadership(ctx, req.GetNodeId())
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.TransferLeadershipResponse{Leader: &coordinatorv1.LeaderInfo{NodeId: id, GrpcAddress: addr}}, nil
	})
}

func nodesToProto(nodes []app.NodeStatus) []*coordinatorv1.Node {
	out := make([]*coordinatorv1.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, &coordinatorv1.Node{
			NodeId:        n.ID,
			RaftAddress:   n.RaftAddress,
			Suffrage:      suffrageToProto(n.Suffrage),
			State:         nodeStateToProto(n.State),
			LastContactAt: timestamp(n.LastContact),
		})
	}
	return out
}

// bearer is the token of an "authorization: Bearer <token>" header.
func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
			return tok
		}
	}
	return ""
}
