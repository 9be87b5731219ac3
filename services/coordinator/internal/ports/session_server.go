package ports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
	"github.com/gaia-platform/gaia/services/coordinator/internal/forward"
)

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
			LeaseTtl:          durationpb.New(r.LeaseTimeout),
		}, nil
	})
}

// Heartbeat answers each beat itself while this node leads, and otherwise
// passes it on to the leader over a relay (forward.HeartbeatRelay), so that
// the client's stream survives leader changes.
func (s *sessionServer) Heartbeat(stream coordinatorv1.SessionService_HeartbeatServer) error {
	ctx := stream.Context()
	var relay forward.HeartbeatRelay
	defer relay.Close()
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
		if err := validateBeat(req); err != nil {
			return err
		}
		resp, err := s.beat(ctx, req, &relay)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// beat answers one beat, here or through the relay. An attempt that finds no
// leader, or a leader that does not answer within the attempt timeout, is
// tried again, on whichever node leads by then, until the beat's budget runs
// out; the client's stream stays open meanwhile. When the budget runs out
// the stream ends UNAVAILABLE, which tells the client to reconnect at once
// (see the Heartbeat RPC's comment for the whole contract).
func (s *sessionServer) beat(ctx context.Context, req *coordinatorv1.HeartbeatRequest, relay *forward.HeartbeatRelay) (*coordinatorv1.HeartbeatResponse, error) {
	attempt, budget := s.App.BeatTimeouts()
	deadline := time.Now().Add(budget)
	for {
		resp, err := s.beatOnce(ctx, req, relay, attempt)
		if err == nil || !retryableBeat(err) || ctx.Err() != nil || time.Now().Add(beatRetryPause).After(deadline) {
			return resp, err
		}
		relay.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(beatRetryPause):
		}
	}
}

// beatRetryPause spaces a beat's attempts while a new leader is elected.
const beatRetryPause = 25 * time.Millisecond

func (s *sessionServer) beatOnce(ctx context.Context, req *coordinatorv1.HeartbeatRequest, relay *forward.HeartbeatRelay, timeout time.Duration) (*coordinatorv1.HeartbeatResponse, error) {
	fctx, conn, local, err := s.Forward.Route(ctx)
	if err != nil {
		return nil, err
	}
	if !local {
		return relay.Beat(fctx, conn, req, timeout)
	}
	relay.Close()
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ack, err := s.App.Heartbeat(actx, app.HeartbeatInput{SessionID: req.GetSessionId(), Token: req.GetSessionToken(), TaskCount: req.GetCurrentTaskCount(), Activity: req.GetActivity()})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, domainerr.New(domainerr.Unavailable, fmt.Sprintf("leadership not confirmed by a quorum within %s", timeout))
		}
		return nil, err
	}
	return ackToProto(ack), nil
}

// retryableBeat tells a beat that another attempt may answer (no leader yet,
// a leader that left or did not answer) from the session's final word.
func retryableBeat(err error) bool {
	return domainerr.KindOf(err) == domainerr.Unavailable || status.Code(err) == codes.Unavailable
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
	if err := validateLabels("labels", f.Labels); err != nil {
		return nil, err
	}
	selected, err := reqfield.LabelSelector("label_selector", req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	if len(selected) > 0 {
		f.Labels = make(map[string]string, len(req.GetLabels())+len(selected))
		for k, v := range req.GetLabels() {
			f.Labels[k] = v
		}
		for k, v := range selected {
			if prev, both := f.Labels[k]; both && prev != v {
				return nil, domainerr.Invalid("label_selector", fmt.Sprintf("key %q contradicts labels[%q]", k, k))
			}
			f.Labels[k] = v
		}
	}
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
		budget := s.replyBudget()
		for _, v := range views {
			ps := sessionViewToProto(v)
			if !budget.Add(ps) {
				more = true
				break
			}
			resp.Sessions = append(resp.Sessions, ps)
		}
		if more && len(resp.Sessions) > 0 {
			last := resp.Sessions[len(resp.Sessions)-1]
			resp.NextPageToken = reqfield.PageToken(last.GetName(), last.GetSessionId())
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
		// A session may hold SESSION_MAX_LOCKS locks (up to a million): its
		// 40,000 released keys once made a reply no client would take, after
		// the deregistration had committed. The reply lists the first keys
		// and counts them all.
		resp := &coordinatorv1.DeregisterSessionResponse{Session: sessionViewToProto(v), ReleasedLockCount: int64(len(released))}
		budget := s.replyBudget()
		budget.Add(resp)
		resp.ReleasedLockKeys = releasedKeys(released, budget)
		return resp, nil
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
	var types []app.EventType
	for _, t := range req.GetTypes() {
		v, ok := eventToState[t]
		if !ok {
			return domainerr.Invalid("types", "unknown event type "+t.String())
		}
		types = append(types, v)
	}
	return s.App.WatchSessions(stream.Context(), req.GetAfterIndex(), types, func(e app.SessionEvent) error {
		return stream.Send(&coordinatorv1.WatchSessionsResponse{Event: eventToProto(e)})
	})
}
