package adapters

import (
	"context"
	"crypto/sha256"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/window"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// CoordinatorSessions follows the coordinator's session events and checks
// session tokens with it. Tokens it has verified are remembered (as hashes)
// for the session's life, so that claims cost no coordinator round trip.
type CoordinatorSessions struct {
	client *client.Client
	log    *zap.Logger

	mu       sync.RWMutex
	view     map[string]task.Session
	verified map[string][32]byte
}

// NewCoordinatorSessions returns a view fed by c.
func NewCoordinatorSessions(c *client.Client, log *zap.Logger) *CoordinatorSessions {
	return &CoordinatorSessions{client: c, log: log, view: map[string]task.Session{}, verified: map[string][32]byte{}}
}

var _ task.Sessions = (*CoordinatorSessions)(nil)

// Run follows the session events until ctx ends, calling onEnded for every
// session that fails or deregisters. The callback is given here rather than
// to the constructor so that the queue, which reads sessions through this
// view, can be built with it first.
func (s *CoordinatorSessions) Run(ctx context.Context, onEnded func(ctx context.Context, sessionID, reason string)) error {
	return s.client.WatchSessions(ctx, &coordinatorv1.WatchSessionsRequest{}, func(e *coordinatorv1.SessionEvent) error {
		sess := sessionFromProto(e.GetSession())
		switch e.GetType() {
		case coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_FAILED, coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_DEREGISTERED:
			s.mu.Lock()
			delete(s.view, sess.ID)
			delete(s.verified, sess.ID)
			s.mu.Unlock()
			onEnded(ctx, sess.ID, "session "+sess.Name+" "+string(sess.Status))
		default:
			s.mu.Lock()
			s.view[sess.ID] = sess
			s.mu.Unlock()
		}
		return nil
	})
}

// Authenticate checks a token, with the coordinator unless it was verified before.
func (s *CoordinatorSessions) Authenticate(ctx context.Context, id, token string) (task.Session, error) {
	h := sha256.Sum256([]byte(token))
	s.mu.RLock()
	known, ok := s.view[id]
	if ok && s.verified[id] == h {
		s.mu.RUnlock()
		return known, nil
	}
	s.mu.RUnlock()
	resp, err := s.client.Sessions().VerifySession(ctx, &coordinatorv1.VerifySessionRequest{SessionId: id, SessionToken: token})
	if err != nil {
		return task.Session{}, coordinatorError(err)
	}
	sess := sessionFromProto(resp.GetSession())
	if sess.Ended() {
		return sess, nil
	}
	s.mu.Lock()
	s.verified[id] = h
	if cur, ok := s.view[id]; !ok || statusRank(sess.Status) >= statusRank(cur.Status) {
		s.view[id] = sess
	}
	s.mu.Unlock()
	return sess, nil
}

// statusRank orders statuses so that a verification answered from an older
// state does not overwrite a newer watch event (suspect and active alternate,
// and are resolved by the next event).
func statusRank(st task.SessionStatus) int {
	switch st {
	case task.SessionRegistered:
		return 0
	case task.SessionActive, task.SessionSuspect:
		return 1
	}
	return 2
}

// Lookup asks the view, then the coordinator.
func (s *CoordinatorSessions) Lookup(ctx context.Context, id string) (task.Session, bool, error) {
	s.mu.RLock()
	sess, ok := s.view[id]
	s.mu.RUnlock()
	if ok {
		return sess, true, nil
	}
	resp, err := s.client.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: id})
	if status.Code(err) == codes.NotFound {
		return task.Session{}, false, nil
	}
	if err != nil {
		return task.Session{}, false, coordinatorError(err)
	}
	return sessionFromProto(resp.GetSession()), true, nil
}

func coordinatorError(err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return task.ErrUnknownSession
	case codes.Unauthenticated, codes.InvalidArgument, codes.PermissionDenied:
		return err
	case codes.Unavailable, codes.DeadlineExceeded:
		return task.ErrCoordinatorAbsent
	}
	return err
}

var statusFromProto = map[coordinatorv1.SessionStatus]task.SessionStatus{
	coordinatorv1.SessionStatus_SESSION_STATUS_REGISTERED:   task.SessionRegistered,
	coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE:       task.SessionActive,
	coordinatorv1.SessionStatus_SESSION_STATUS_SUSPECT:      task.SessionSuspect,
	coordinatorv1.SessionStatus_SESSION_STATUS_FAILED:       task.SessionFailed,
	coordinatorv1.SessionStatus_SESSION_STATUS_DEREGISTERED: task.SessionDeregistered,
}

func sessionFromProto(p *coordinatorv1.Session) task.Session {
	s := task.Session{
		ID:                  p.GetSessionId(),
		Name:                p.GetName(),
		Status:              statusFromProto[p.GetStatus()],
		ConsecutiveFailures: int(p.GetConsecutiveFailures()),
		MaxConcurrentTasks:  int(p.GetMaxConcurrentTasks()),
	}
	for _, pw := range p.GetTimeWindows() {
		if w, err := window.FromProto(pw); err == nil {
			s.Windows = append(s.Windows, w)
		}
	}
	return s
}
