package ports

import (
	"context"

	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
)

type lockServer struct {
	coordinatorv1.UnimplementedLockServiceServer
	*Servers
}

// lockRef validates the fields every lock RPC that acts for a session
// carries: the key, the session and its token, and the fencing token of the
// grant when needFencing (renew and release).
func lockRef(key, sessionID, sessionToken string, fencing uint64, needFencing bool) (app.LockRef, error) {
	ref := app.LockRef{Key: key, SessionID: sessionID, Token: sessionToken, Fencing: fencing}
	if err := validateLockKey(key); err != nil {
		return ref, err
	}
	if err := reqfield.SessionRef(sessionID, sessionToken); err != nil {
		return ref, err
	}
	if needFencing && fencing == 0 {
		return ref, domainerr.Invalid("fencing_token", "is required")
	}
	return ref, nil
}

func (s *lockServer) AcquireLock(ctx context.Context, req *coordinatorv1.AcquireLockRequest) (*coordinatorv1.AcquireLockResponse, error) {
	ref, err := lockRef(req.GetKey(), req.GetSessionId(), req.GetSessionToken(), 0, false)
	if err != nil {
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
		l, err := s.App.AcquireLock(ctx, ref, ttl, wait)
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.AcquireLockResponse{Lock: lockToProto(l)}, nil
	})
}

func (s *lockServer) RenewLock(ctx context.Context, req *coordinatorv1.RenewLockRequest) (*coordinatorv1.RenewLockResponse, error) {
	ref, err := lockRef(req.GetKey(), req.GetSessionId(), req.GetSessionToken(), req.GetFencingToken(), true)
	if err != nil {
		return nil, err
	}
	ttl, err := reqfield.Duration("ttl", req.GetTtl(), 0, minLockTTL, maxLockTTL)
	if err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.RenewLockResponse, error) {
		return coordinatorv1.NewLockServiceClient(conn).RenewLock(fctx, req)
	}, func() (*coordinatorv1.RenewLockResponse, error) {
		l, err := s.App.RenewLock(ctx, ref, ttl)
		if err != nil {
			return nil, err
		}
		return &coordinatorv1.RenewLockResponse{Lock: lockToProto(l)}, nil
	})
}

func (s *lockServer) ReleaseLock(ctx context.Context, req *coordinatorv1.ReleaseLockRequest) (*coordinatorv1.ReleaseLockResponse, error) {
	ref, err := lockRef(req.GetKey(), req.GetSessionId(), req.GetSessionToken(), req.GetFencingToken(), true)
	if err != nil {
		return nil, err
	}
	return serve(ctx, s.Forward, func(fctx context.Context, conn *grpc.ClientConn) (*coordinatorv1.ReleaseLockResponse, error) {
		return coordinatorv1.NewLockServiceClient(conn).ReleaseLock(fctx, req)
	}, func() (*coordinatorv1.ReleaseLockResponse, error) {
		if err := s.App.ReleaseLock(ctx, ref); err != nil {
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
		budget := s.replyBudget()
		for _, l := range locks {
			pl := lockToProto(l)
			if !budget.Add(pl) {
				more = true
				break
			}
			resp.Locks = append(resp.Locks, pl)
		}
		if more && len(resp.Locks) > 0 {
			resp.NextPageToken = reqfield.PageToken(resp.Locks[len(resp.Locks)-1].GetKey())
		}
		return resp, nil
	})
}
