package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// Config describes the session and how it works.
type Config struct {
	// Coordinator lists coordinator gRPC addresses; any node will do.
	Coordinator []string
	// TaskQueue is the task queue's gRPC address.
	TaskQueue string
	// Session describes the session to register. Its name must not belong
	// to a live session.
	Session *coordinatorv1.RegisterSessionRequest
	// TaskTypes limits the tasks claimed; empty claims any.
	TaskTypes []string
	// ClaimWait is how long one claim call long-polls for work (default 10 s).
	ClaimWait time.Duration
	// GracePeriod is how long running tasks may go on after shutdown begins
	// (default 30 s).
	GracePeriod time.Duration
	// LockTTL is the TTL of the locks a task takes (default 30 s; renewed
	// every third of it). LockWait bounds how long a task waits for each of
	// its locks before it is failed as retryable (default 5 min).
	LockTTL, LockWait time.Duration
	// RegisterTimeout bounds registration, so that an unreachable
	// coordinator is reported instead of waited for (default 10 s).
	RegisterTimeout time.Duration
	// DialOptions apply to the connections to the coordinator and the task
	// queue, such as grpcclient.WithTLS for TLS.
	DialOptions []grpc.DialOption
	Logger      *zap.Logger
}

func (c *Config) defaults() {
	if c.ClaimWait <= 0 {
		c.ClaimWait = 10 * time.Second
	}
	if c.GracePeriod <= 0 {
		c.GracePeriod = 30 * time.Second
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 30 * time.Second
	}
	if c.LockWait <= 0 {
		c.LockWait = 5 * time.Minute
	}
	if c.RegisterTimeout <= 0 {
		c.RegisterTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Task is a claimed task as a handler sees it.
type Task struct {
	ID          string
	Type        string
	LessonID    string
	Payload     json.RawMessage
	Attempt     int
	MaxAttempts int
	ClaimToken  string
	// Locks are the locks the task named, held for the whole run.
	Locks []Lock
	// SessionID and SessionName identify the session running the task.
	SessionID, SessionName string
}

// Lock is a held lock and its fencing token.
type Lock struct {
	Key          string `json:"key"`
	FencingToken uint64 `json:"fencing_token"`
}

// Handler runs one task. A nil error completes the task with result; an
// error fails it, as retryable unless wrapped with Permanent.
type Handler func(ctx context.Context, t *Task) (result map[string]any, err error)

// Permanent marks an error whose task must not be retried.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// Event reports what the worker is doing, for display.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"event"` // registered, claimed, completed, failed, claim_lost, settle_failed, session_lost, stopping, deregistered
	TaskID  string    `json:"task_id,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Errors Run returns.
var (
	ErrSessionLost = errors.New("session lost")
	ErrNameInUse   = errors.New("session name already in use by a live session")
)

// Worker is a running session.
type Worker struct {
	cfg     Config
	handler Handler
	log     *zap.Logger
	coord   *client.Client
	qconn   *grpc.ClientConn
	tasks   taskqueuev1.TaskServiceClient
	events  func(Event)

	sessionID, token string
	leaseTimeout     time.Duration
	beater           *client.Heartbeater

	mu      sync.Mutex
	running map[string]context.CancelFunc
}

// Run registers a session and works tasks with handler until ctx ends, then
// shuts down gracefully. events, if not nil, is called for every event. It
// returns nil after a clean shutdown, ErrSessionLost (wrapped) when the
// coordinator failed the session, or the error that stopped it from starting.
func Run(ctx context.Context, cfg Config, handler Handler, events func(Event)) error {
	w, err := Start(ctx, cfg, handler, events)
	if err != nil {
		return err
	}
	return w.Wait(ctx)
}

// Start registers the session and starts its heartbeat; Wait works tasks.
func Start(ctx context.Context, cfg Config, handler Handler, events func(Event)) (*Worker, error) {
	cfg.defaults()
	if cfg.Session == nil || cfg.Session.GetName() == "" {
		return nil, errors.New("agent: Config.Session with a name is required")
	}
	if events == nil {
		events = func(Event) {}
	}
	w := &Worker{cfg: cfg, handler: handler, log: cfg.Logger.With(zap.String("session", cfg.Session.GetName())), events: events, running: map[string]context.CancelFunc{}}
	var err error
	if w.coord, err = client.New(client.Options{Addrs: cfg.Coordinator, Logger: cfg.Logger.Named("coordinator-client"), DialOptions: cfg.DialOptions}); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	if w.qconn, err = grpcclient.Dial(cfg.TaskQueue, cfg.DialOptions...); err != nil {
		_ = w.coord.Close()
		return nil, fmt.Errorf("task queue: %w", err)
	}
	w.tasks = taskqueuev1.NewTaskServiceClient(w.qconn)

	rctx, cancel := context.WithTimeout(ctx, cfg.RegisterTimeout)
	defer cancel()
	resp, err := w.coord.Sessions().RegisterSession(rctx, cfg.Session)
	if err != nil {
		w.close()
		switch status.Code(err) {
		case codes.AlreadyExists:
			return nil, fmt.Errorf("%w: %s", ErrNameInUse, cfg.Session.GetName())
		case codes.Unavailable, codes.DeadlineExceeded:
			return nil, fmt.Errorf("cannot reach the coordinator at %v within %s: %s", cfg.Coordinator, cfg.RegisterTimeout, status.Convert(err).Message())
		}
		return nil, fmt.Errorf("register session: %s", status.Convert(err).Message())
	}
	w.sessionID, w.token = resp.GetSession().GetSessionId(), resp.GetSessionToken()
	w.leaseTimeout = resp.GetLeaseTtl().AsDuration()
	w.log = w.log.With(zap.String("session_id", w.sessionID))
	w.beater = w.coord.StartHeartbeat(context.Background(), w.sessionID, w.token, resp.GetHeartbeatInterval().AsDuration(), w.heartbeatStatus)
	w.events(Event{Time: time.Now(), Kind: "registered", Detail: w.sessionID})
	return w, nil
}

// SessionID is the registered session's id.
func (w *Worker) SessionID() string { return w.sessionID }

func (w *Worker) heartbeatStatus() (int32, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.running)
	if n == 0 {
		return 0, "idle"
	}
	return int32(n), fmt.Sprintf("running %d task(s)", n)
}

func (w *Worker) close() {
	if w.qconn != nil {
		_ = w.qconn.Close()
	}
	_ = w.coord.Close()
}

// Wait claims and runs tasks until ctx ends or the session is lost.
func (w *Worker) Wait(ctx context.Context) error {
	defer w.close()
	lost := w.watchSession()
	claimCtx, stopClaiming := context.WithCancel(ctx)
	defer stopClaiming()
	go func() {
		select {
		case <-lost.done:
			stopClaiming()
		case <-claimCtx.Done():
		}
	}()

	var wg sync.WaitGroup
	slots := make(chan struct{}, max(int(w.cfg.Session.GetMaxConcurrentTasks()), 1))
	retryWait := time.Second
	for claimCtx.Err() == nil {
		// Wait for a free slot, then claim as many as are free.
		select {
		case slots <- struct{}{}:
		case <-claimCtx.Done():
			continue
		}
		free := 1
		for len(slots) < cap(slots) {
			slots <- struct{}{}
			free++
		}
		claims, err := w.claim(claimCtx, free)
		if err == nil {
			retryWait = time.Second
		}
		for i := len(claims); i < free; i++ {
			<-slots
		}
		if err != nil {
			if claimCtx.Err() != nil {
				break
			}
			if status.Code(err) == codes.Unauthenticated {
				lost.declare(fmt.Errorf("%w: %s", ErrSessionLost, status.Convert(err).Message()))
				break
			}
			// FAILED_PRECONDITION may pass (a suspect session that beats
			// again, a time window that opens); a failed session shows up on
			// the heartbeat stream and ends the loop.
			w.log.Warn("claim refused; retrying", zap.Error(err), zap.Duration("backoff", retryWait))
			select {
			case <-time.After(retryWait):
			case <-claimCtx.Done():
			}
			retryWait = min(retryWait*2, 30*time.Second)
			continue
		}
		for _, c := range claims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				w.runTask(lost, c)
			}()
		}
	}

	// Shutdown: let running tasks finish within the grace period.
	if lost.err() == nil {
		w.events(Event{Time: time.Now(), Kind: "stopping", Detail: fmt.Sprintf("waiting up to %s for running tasks", w.cfg.GracePeriod)})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-lost.done:
		w.cancelAll()
		<-finished
	case <-time.After(w.cfg.GracePeriod):
		w.log.Warn("grace period over; stopping running tasks", zap.Duration("grace", w.cfg.GracePeriod))
		w.cancelAll()
		<-finished
	}
	w.beater.Stop()
	if err := lost.err(); err != nil {
		w.events(Event{Time: time.Now(), Kind: "session_lost", Detail: err.Error()})
		return err
	}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.coord.Sessions().DeregisterSession(dctx, &coordinatorv1.DeregisterSessionRequest{SessionId: w.sessionID, SessionToken: w.token}); err != nil {
		return fmt.Errorf("deregister session: %s", status.Convert(err).Message())
	}
	w.events(Event{Time: time.Now(), Kind: "deregistered"})
	return nil
}

func (w *Worker) claim(ctx context.Context, n int) ([]*taskqueuev1.Claim, error) {
	resp, err := w.tasks.ClaimTasks(ctx, &taskqueuev1.ClaimTasksRequest{
		SessionId: w.sessionID, SessionToken: w.token, TaskTypes: w.cfg.TaskTypes,
		MaxTasks: int32(n), Wait: durationpb.New(w.cfg.ClaimWait),
	})
	return resp.GetClaims(), err
}

func (w *Worker) cancelAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cancel := range w.running {
		cancel()
	}
}

// sessionWatch says when the session is lost: the server says so, or no
// heartbeat has been acknowledged for a whole lease (the coordinator will
// have failed it by then, and its claims are gone).
type sessionWatch struct {
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	why  error
}

func (s *sessionWatch) declare(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.why = err
		s.mu.Unlock()
		close(s.done)
	})
}

func (s *sessionWatch) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why
}

func (w *Worker) watchSession() *sessionWatch {
	s := &sessionWatch{done: make(chan struct{})}
	go func() {
		tick := time.NewTicker(max(w.leaseTimeout/20, 10*time.Millisecond))
		defer tick.Stop()
		lastLease, lastSeen := time.Time{}, time.Now()
		for {
			select {
			case <-s.done:
				return
			case <-w.beater.Lost():
				s.declare(fmt.Errorf("%w: %s", ErrSessionLost, status.Convert(w.beater.Err()).Message()))
				return
			case <-tick.C:
			}
			// Measured on this machine's clock: when the acknowledged lease
			// last moved, and how long ago that was.
			if lease, _ := w.beater.LastAck(); !lease.Equal(lastLease) {
				lastLease, lastSeen = lease, time.Now()
			}
			if time.Since(lastSeen) > w.leaseTimeout {
				s.declare(fmt.Errorf("%w: no heartbeat acknowledged for %s (the lease)", ErrSessionLost, w.leaseTimeout))
				return
			}
		}
	}()
	return s
}
