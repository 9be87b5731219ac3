package app

import (
	"context"
	"time"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// ClaimInput asks for work.
type ClaimInput struct {
	SessionID string
	Token     string
	Types     []string
	Max       int
	Wait      time.Duration
	// MaxBytes bounds the claims' size in the reply, as Size measures one
	// (task.ClaimRequest); 0 means no bound.
	MaxBytes int
	Size     func(task.Claim) int
}

// Claim claims up to Max ready tasks for an available session, waiting up
// to Wait for work when there is none. more reports that the reply's byte
// budget, not Max or the session's capacity, ended the claim.
func (q *Queue) Claim(ctx context.Context, in ClaimInput) (claims []task.Claim, more bool, err error) {
	start := q.now()
	sess, err := q.availableSession(ctx, in.SessionID, in.Token, start)
	if err != nil {
		return nil, false, err
	}
	req := task.ClaimRequest{
		SessionID:     sess.ID,
		SessionName:   sess.Name,
		Types:         in.Types,
		Limit:         in.Max,
		MaxConcurrent: max(sess.MaxConcurrentTasks, 1),
		MaxBytes:      in.MaxBytes,
		Size:          in.Size,
	}
	deadline := time.NewTimer(in.Wait)
	defer deadline.Stop()
	for {
		woken := q.notifier.Wait()
		req.Now = q.now()
		claims, more, err := q.tasks.Claim(ctx, req)
		if err != nil {
			return nil, false, err
		}
		if len(claims) > 0 || in.Wait <= 0 {
			q.metrics.claimLatency.Observe(q.now().Sub(start).Seconds())
			for _, c := range claims {
				q.metrics.typed(q.metrics.claimed, c.Task.Type).Inc()
			}
			return claims, more, nil
		}
		poll := time.NewTimer(q.cfg.PollInterval)
		select {
		case <-ctx.Done():
			poll.Stop()
			return nil, false, ctx.Err()
		case <-deadline.C:
			poll.Stop()
			return nil, false, nil
		case <-woken:
		case <-poll.C:
		}
		poll.Stop()
		// The session may have failed, or left its time windows, while it
		// waited: a task must not go to a session that can no longer run it.
		if _, err := q.availableSession(ctx, in.SessionID, in.Token, q.now()); err != nil {
			return nil, false, err
		}
	}
}

// availableSession authenticates a session and checks that it may claim now.
func (q *Queue) availableSession(ctx context.Context, id, token string, now time.Time) (task.Session, error) {
	sess, err := q.sessions.Authenticate(ctx, id, token)
	if err != nil {
		return task.Session{}, err
	}
	return sess, sess.CanClaim(now)
}
