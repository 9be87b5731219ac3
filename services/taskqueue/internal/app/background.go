package app

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/background"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// SessionEnded takes back at once every claim of a session the coordinator
// failed or deregistered.
func (q *Queue) SessionEnded(ctx context.Context, sessionID, reason string) {
	rq, err := q.tasks.RequeueSession(ctx, sessionID, "claim lost: "+reason)
	if err != nil {
		q.log.Error("requeue of a failed session's tasks failed", zap.String("session_id", sessionID), zap.Error(err))
		return
	}
	q.recordRequeues(rq, "session_ended")
	if len(rq) > 0 {
		q.log.Info("tasks of an ended session requeued", zap.String("session_id", sessionID), zap.Int("tasks", len(rq)), zap.String("reason", reason))
		q.notifier.Wake()
	}
}

func (q *Queue) recordRequeues(rq []task.Requeued, why string) {
	for _, r := range rq {
		if r.Dead {
			q.metrics.requeued.WithLabelValues(why, "dead").Inc()
		} else {
			q.metrics.requeued.WithLabelValues(why, "pending").Inc()
		}
	}
}

// Run does the background work until ctx ends: the reaper of expired
// claims, the reconciliation of claim holders with the coordinator, and
// pruning. Each is its own loop with its own deadline per run, so that a
// coordinator that cannot be reached, or a slow prune, never delays lease
// expiry; a panic in one is logged and counted, and the loop goes on. Every
// replica may run them; each step is safe to run concurrently.
func (q *Queue) Run(ctx context.Context) {
	opts := background.Options{OnPanic: func(job string, _ any) { q.metrics.panics.WithLabelValues(job).Inc() }}
	var wg sync.WaitGroup
	// Reconcile also runs at start-up, at once: claims of sessions that
	// ended while this replica was down go back now, not an interval later.
	wg.Go(func() { background.Every(ctx, q.log, "reaper", q.cfg.ReapInterval, q.cfg.ReapTimeout, opts, q.reap) })
	wg.Go(func() {
		background.Every(ctx, q.log, "reconciler", q.cfg.ReconcileInterval, q.cfg.ReconcileTimeout, opts, q.reconcile)
	})
	wg.Go(func() { background.Every(ctx, q.log, "pruner", q.cfg.PruneInterval, q.cfg.PruneTimeout, opts, q.prune) })
	wg.Wait()
}

func (q *Queue) reap(ctx context.Context) {
	for {
		rq, err := q.tasks.RequeueExpired(ctx, 1000)
		if err != nil {
			if ctx.Err() == nil {
				q.log.Error("reaping expired claims failed", zap.Error(err))
			}
			return
		}
		q.recordRequeues(rq, "claim_expired")
		if len(rq) > 0 {
			q.log.Info("expired claims requeued", zap.Int("tasks", len(rq)))
			q.notifier.Wake()
		}
		if len(rq) < 1000 {
			return
		}
	}
}

func (q *Queue) reconcile(ctx context.Context) {
	ids, err := q.tasks.ClaimingSessions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("listing claim holders failed", zap.Error(err))
		}
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			q.log.Warn("reconciling claim holders ran out of time", zap.Int("holders", len(ids)))
			return
		}
		s, found, err := q.lookup(ctx, id)
		if err != nil {
			q.log.Warn("checking a claim holder failed", zap.String("session_id", id), zap.Error(err))
			continue
		}
		if !found {
			q.SessionEnded(ctx, id, "session unknown to the coordinator")
		} else if s.Ended() {
			q.SessionEnded(ctx, id, "session "+s.Name+" "+string(s.Status))
		}
	}
}

// lookup asks the coordinator about one holder, for LookupTimeout at most:
// a coordinator that cannot be reached costs each holder that long, not the
// client's whole retry budget.
func (q *Queue) lookup(ctx context.Context, id string) (task.Session, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, q.cfg.LookupTimeout)
	defer cancel()
	return q.sessions.Lookup(ctx, id)
}

func (q *Queue) prune(ctx context.Context) {
	now := q.now()
	n, err := q.tasks.Prune(ctx, now.Add(-q.cfg.Retention), now.Add(-q.cfg.DeadRetention))
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("pruning finished tasks failed", zap.Error(err))
		}
		return
	}
	if n > 0 {
		q.log.Info("finished tasks pruned", zap.Int64("tasks", n))
	}
}
