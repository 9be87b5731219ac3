package adapters

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/metrics/internal/app"
)

// CoordinatorLocks implements app.LockClient with a coordinator session of
// this replica's own: it registers the session (tier worker, labels
// service=metrics, role=detector), keeps its heartbeat and takes the
// detector's locks in its name.
type CoordinatorLocks struct {
	client     *client.Client
	joinSecret string

	mu    sync.Mutex
	id    string
	token string
	hb    *client.Heartbeater
}

// NewCoordinatorLocks returns the lock client; joinSecret is the cluster's
// (CLUSTER_JOIN_SECRET), empty when it has none.
func NewCoordinatorLocks(c *client.Client, joinSecret string) *CoordinatorLocks {
	return &CoordinatorLocks{client: c, joinSecret: joinSecret}
}

var _ app.LockClient = (*CoordinatorLocks)(nil)

// Start registers a new session and starts its heartbeat.
func (l *CoordinatorLocks) Start(ctx context.Context) (<-chan struct{}, error) {
	l.mu.Lock()
	old := l.hb
	l.mu.Unlock()
	if old != nil {
		old.Stop()
	}
	host, _ := os.Hostname()
	name := fmt.Sprintf("metrics-detector-%s-%d-%s", sanitizeName(host), os.Getpid(), uuid.NewString()[:8])
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := l.client.Sessions().RegisterSession(rctx, &coordinatorv1.RegisterSessionRequest{
		Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_OTHER,
		Labels: map[string]string{"service": "metrics", "role": "detector"}, JoinSecret: l.joinSecret,
	})
	if err != nil {
		return nil, err
	}
	id, token := resp.GetSession().GetSessionId(), resp.GetSessionToken()
	hb := l.client.StartHeartbeat(ctx, id, token, resp.GetHeartbeatInterval().AsDuration(), func() (int32, string) { return 0, "detecting frustration" })
	l.mu.Lock()
	l.id, l.token, l.hb = id, token, hb
	l.mu.Unlock()
	return hb.Lost(), nil
}

// Stop ends the heartbeat and deregisters the session (its locks are freed).
func (l *CoordinatorLocks) Stop(ctx context.Context) {
	l.mu.Lock()
	hb, id, token := l.hb, l.id, l.token
	l.mu.Unlock()
	if hb == nil {
		return
	}
	hb.Stop()
	_, _ = l.client.Sessions().DeregisterSession(ctx, &coordinatorv1.DeregisterSessionRequest{SessionId: id, SessionToken: token})
}

func (l *CoordinatorLocks) creds() (string, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id, l.token
}

// SessionID is the current session's id.
func (l *CoordinatorLocks) SessionID() string {
	id, _ := l.creds()
	return id
}

// Acquire takes a lock without waiting.
func (l *CoordinatorLocks) Acquire(ctx context.Context, key string, ttl time.Duration) (uint64, error) {
	id, token := l.creds()
	resp, err := l.client.Locks().AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{Key: key, SessionId: id, SessionToken: token,
		Ttl: durationpb.New(ttl), WaitTimeout: durationpb.New(0)})
	if err != nil {
		switch status.Code(err) {
		case codes.Aborted, codes.DeadlineExceeded, codes.AlreadyExists:
			return 0, app.ErrLockHeld
		}
		return 0, err
	}
	return resp.GetLock().GetFencingToken(), nil
}

// Renew extends a held lock.
func (l *CoordinatorLocks) Renew(ctx context.Context, key string, fencing uint64, ttl time.Duration) error {
	id, token := l.creds()
	_, err := l.client.Locks().RenewLock(ctx, &coordinatorv1.RenewLockRequest{Key: key, SessionId: id, SessionToken: token,
		FencingToken: fencing, Ttl: durationpb.New(ttl)})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.FailedPrecondition, codes.NotFound, codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("%w: %v", app.ErrLockLost, err)
	}
	return err
}

// Release lets a held lock go.
func (l *CoordinatorLocks) Release(ctx context.Context, key string, fencing uint64) error {
	id, token := l.creds()
	_, err := l.client.Locks().ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{Key: key, SessionId: id, SessionToken: token, FencingToken: fencing})
	return err
}

// Holders lists the holder of every lock under prefix.
func (l *CoordinatorLocks) Holders(ctx context.Context, prefix string) (map[string]string, error) {
	out := map[string]string{}
	req := &coordinatorv1.ListLocksRequest{Prefix: prefix, PageSize: 1000}
	for {
		resp, err := l.client.Locks().ListLocks(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, lk := range resp.GetLocks() {
			out[lk.GetKey()] = lk.GetOwnerSessionId()
		}
		if resp.GetNextPageToken() == "" {
			return out, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// sanitizeName keeps a session name within the coordinator's alphabet.
func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	if len(b) == 0 {
		return "host" + strconv.Itoa(os.Getpid())
	}
	return string(b)
}
