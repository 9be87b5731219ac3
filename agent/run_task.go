package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// Running one claimed task: its lease kept extended, the locks its payload
// names taken and released, and the task settled as the handler says.

// runTask runs one claim to its end.
func (w *Worker) runTask(lost *sessionWatch, c *taskqueuev1.Claim) {
	pt := c.GetTask()
	t := &Task{
		ID: pt.GetTaskId(), Type: pt.GetTaskType(), LessonID: pt.GetLessonId(),
		Attempt: int(pt.GetAttempt()), MaxAttempts: int(pt.GetMaxAttempts()), ClaimToken: c.GetClaimToken(),
		SessionID: w.sessionID, SessionName: w.cfg.Session.GetName(),
	}
	t.Payload, _ = protojson.Marshal(pt.GetPayload())
	if pt.GetPayload() == nil {
		t.Payload = json.RawMessage("{}")
	}
	log := w.log.With(zap.String("task_id", t.ID), zap.Int("attempt", t.Attempt))
	w.events(Event{Time: time.Now(), Kind: "claimed", TaskID: t.ID, Attempt: t.Attempt, Detail: t.Type})

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	w.mu.Lock()
	w.running[t.ID] = func() { cancel(errors.New("worker stopping")) }
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, t.ID)
		w.mu.Unlock()
	}()
	go func() {
		select {
		case <-lost.done:
			cancel(lost.err())
		case <-ctx.Done():
		}
	}()

	// Keep the claim alive.
	lease := pt.GetClaimTimeout().AsDuration()
	var keep sync.WaitGroup
	keep.Add(1)
	go func() {
		defer keep.Done()
		w.extendClaim(ctx, cancel, t, lease, log)
	}()

	locks, releaseLocks, err := w.takeLocks(ctx, cancel, t, log)
	if err == nil {
		t.Locks = locks
		var result map[string]any
		result, err = w.handler(ctx, t)
		releaseLocks()
		if err == nil && ctx.Err() == nil {
			cancel(nil)
			keep.Wait()
			w.complete(t, result, log)
			return
		}
	}
	cause := context.Cause(ctx)
	cancel(err)
	keep.Wait()
	switch {
	case errors.Is(cause, errClaimLost):
		w.events(Event{Time: time.Now(), Kind: "claim_lost", TaskID: t.ID, Attempt: t.Attempt, Detail: cause.Error()})
		return
	case errors.Is(cause, ErrSessionLost):
		// Nothing can be settled any more: the queue took the claim back.
		return
	}
	if err == nil {
		err = cause
	}
	w.fail(t, err, log)
}

var errClaimLost = errors.New("claim lost")

func (w *Worker) extendClaim(ctx context.Context, cancel context.CancelCauseFunc, t *Task, lease time.Duration, log *zap.Logger) {
	every := max(lease/3, 100*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, ccancel := context.WithTimeout(ctx, every)
		_, err := w.tasks.ExtendClaim(cctx, &taskqueuev1.ExtendClaimRequest{TaskId: t.ID, ClaimToken: t.ClaimToken, SessionId: w.sessionID, SessionToken: w.token})
		ccancel()
		switch status.Code(err) {
		case codes.OK, codes.Canceled:
		case codes.FailedPrecondition, codes.NotFound:
			log.Warn("claim lost; stopping the task", zap.Error(err))
			cancel(fmt.Errorf("%w: %s", errClaimLost, status.Convert(err).Message()))
			return
		default:
			log.Warn("extending the claim failed; will retry", zap.Error(err))
		}
	}
}

// takeLocks acquires the payload's locks in key order (so two tasks never
// deadlock) and renews them while the task runs.
func (w *Worker) takeLocks(ctx context.Context, cancel context.CancelCauseFunc, t *Task, log *zap.Logger) ([]Lock, func(), error) {
	keys, err := lockKeys(t.Payload)
	if err != nil || len(keys) == 0 {
		return nil, func() {}, err
	}
	var held []Lock
	release := func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		for _, l := range held {
			if _, err := w.coord.Locks().ReleaseLock(rctx, &coordinatorv1.ReleaseLockRequest{Key: l.Key, SessionId: w.sessionID, SessionToken: w.token, FencingToken: l.FencingToken}); err != nil {
				log.Warn("releasing a lock failed", zap.String("key", l.Key), zap.Error(err))
			}
		}
	}
	for _, k := range keys {
		actx, acancel := context.WithTimeout(ctx, w.cfg.LockWait+5*time.Second)
		resp, err := w.coord.Locks().AcquireLock(actx, &coordinatorv1.AcquireLockRequest{
			Key: k, SessionId: w.sessionID, SessionToken: w.token,
			Ttl: durationpb.New(w.cfg.LockTTL), WaitTimeout: durationpb.New(w.cfg.LockWait),
		})
		acancel()
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("lock %s not acquired: %s", k, status.Convert(err).Message())
		}
		held = append(held, Lock{Key: k, FencingToken: resp.GetLock().GetFencingToken()})
	}
	renewCtx, stopRenew := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(w.cfg.LockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-tick.C:
			}
			for _, l := range held {
				_, err := w.coord.Locks().RenewLock(renewCtx, &coordinatorv1.RenewLockRequest{Key: l.Key, SessionId: w.sessionID, SessionToken: w.token, FencingToken: l.FencingToken})
				switch status.Code(err) {
				case codes.OK, codes.Canceled:
				case codes.FailedPrecondition, codes.NotFound, codes.PermissionDenied:
					cancel(fmt.Errorf("%w: lock %s lost: %s", errClaimLost, l.Key, status.Convert(err).Message()))
					return
				default:
					log.Warn("renewing a lock failed; will retry", zap.String("key", l.Key), zap.Error(err))
				}
			}
		}
	}()
	return held, func() { stopRenew(); <-done; release() }, nil
}

// lockKeys reads the payload's "locks" list: sorted, without duplicates.
func lockKeys(payload json.RawMessage) ([]string, error) {
	var p struct {
		Locks []string `json:"locks"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("payload locks: %w", err)
	}
	sort.Strings(p.Locks)
	out := p.Locks[:0]
	for i, k := range p.Locks {
		if k == "" {
			return nil, errors.New(`payload "locks" holds an empty key`)
		}
		if i == 0 || k != p.Locks[i-1] {
			out = append(out, k)
		}
	}
	return out, nil
}

// Settling retries for as long as settleRetryFor while the queue cannot be
// reached, each call bounded by settleCallTimeout.
var (
	settleRetryFor    = 30 * time.Second
	settleCallTimeout = 10 * time.Second
)

// complete settles a task whose handler succeeded. A completion the queue
// cannot take must not leave the claim held until its timeout (keeping the
// task from anyone for 10 minutes by default, then running it again to the
// same end): it is retried while the queue is unreachable, and otherwise the
// task is failed at once, with the reason.
func (w *Worker) complete(t *Task, result map[string]any, log *zap.Logger) {
	var res *structpb.Struct
	if result != nil {
		var err error
		if res, err = structpb.NewStruct(result); err != nil {
			w.fail(t, Permanent(fmt.Errorf("result is not JSON: %w", err)), log)
			return
		}
	}
	err := w.settle(func(ctx context.Context) error {
		_, err := w.tasks.CompleteTask(ctx, &taskqueuev1.CompleteTaskRequest{TaskId: t.ID, ClaimToken: t.ClaimToken, SessionId: w.sessionID, SessionToken: w.token, Result: res})
		return err
	})
	switch code := status.Code(err); {
	case err == nil:
		w.events(Event{Time: time.Now(), Kind: "completed", TaskID: t.ID, Attempt: t.Attempt})
	case code == codes.FailedPrecondition || code == codes.NotFound:
		// The claim is gone already: nothing is held, nothing to settle.
		log.Warn("completing the task failed: claim lost", zap.Error(err))
		w.events(Event{Time: time.Now(), Kind: "claim_lost", TaskID: t.ID, Attempt: t.Attempt, Detail: status.Convert(err).Message()})
	default:
		log.Warn("completing the task failed; failing it to release its claim", zap.Error(err))
		cause := fmt.Errorf("the task succeeded but completing it failed (%s): %s", code, status.Convert(err).Message())
		if transient(code) {
			// The queue could not be reached: another attempt may complete.
			w.fail(t, cause, log)
			return
		}
		// The queue refused this result; running the task again would
		// produce it again.
		w.fail(t, Permanent(cause), log)
	}
}

// settle calls call until it succeeds, fails for good, or settleRetryFor has
// passed.
func (w *Worker) settle(call func(context.Context) error) error {
	deadline := time.Now().Add(settleRetryFor)
	wait := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), settleCallTimeout)
		err := call(ctx)
		cancel()
		if err == nil || !transient(status.Code(err)) || time.Now().Add(wait).After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Second)
	}
}

// transient says whether a settle that failed with code may succeed if
// tried again unchanged.
func transient(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}

func (w *Worker) fail(t *Task, cause error, log *zap.Logger) {
	var perm permanentError
	retryable := !errors.As(cause, &perm)
	msg := cause.Error()
	if len(msg) > 8000 {
		// Cut on a character boundary: a string field must be valid UTF-8.
		msg = strings.ToValidUTF8(msg[len(msg)-8000:], "")
	}
	var resp *taskqueuev1.FailTaskResponse
	err := w.settle(func(ctx context.Context) (err error) {
		resp, err = w.tasks.FailTask(ctx, &taskqueuev1.FailTaskRequest{TaskId: t.ID, ClaimToken: t.ClaimToken, SessionId: w.sessionID, SessionToken: w.token, Error: msg, Retryable: retryable})
		return err
	})
	if err != nil {
		// The claim stays until its timeout; the queue then takes it back.
		log.Warn("failing the task failed", zap.Error(err))
		w.events(Event{Time: time.Now(), Kind: "settle_failed", TaskID: t.ID, Attempt: t.Attempt, Detail: status.Convert(err).Message()})
		return
	}
	detail := msg
	if resp.GetWillRetry() {
		detail += " (will retry)"
	}
	w.events(Event{Time: time.Now(), Kind: "failed", TaskID: t.ID, Attempt: t.Attempt, Detail: detail})
}
