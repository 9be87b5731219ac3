package adapters

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// completionCombiner settles the CompleteTasks batches that arrive while
// one is in flight in one UPDATE and one commit, as claimCombiner does for
// claims: sixteen sessions completing at once were sixteen statements, each
// with its commit's WAL flush, waiting on each other's WAL writes and
// buffers (docs/BENCHMARKS.md). Each claim is settled under its own
// session's fencing, exactly as in a statement of its own.
//
// A caller that leaves while its batch waits is dropped from the statement.
// One that leaves while its statement runs is answered with its context's
// error, and its claims are settled or not as the statement goes: as for a
// lone statement whose caller left while it committed, the client cannot
// tell, and a retry finds the claims settled (ErrClaimLost).
type completionCombiner struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	queue   []*completionWaiter
	running int
	// statements is how many statements may be in flight at once:
	// completionStatements, or 1 in tests that gather batches into one.
	statements int

	// Test hooks, nil outside tests: queued is called with the number of
	// batches waiting once one more waits, taken with the number of batches
	// of a statement before it runs.
	queued func(int)
	taken  func(int)
}

// completionStatements is how many completion statements may be in flight
// at once; maxCompletionBatch bounds the requests of one.
const (
	completionStatements = 2
	maxCompletionBatch   = 64
)

// completionTimeout bounds one statement, whose callers may all have
// left.
const completionTimeout = time.Minute

// completionWaiter is one caller's batch. taken, tasks and err are guarded
// by the combiner's mutex; done is closed, under it, once they are set.
type completionWaiter struct {
	sessionID string
	claims    []task.Completion
	done      chan struct{}
	taken     bool
	tasks     []task.Task // the tasks this request completed
	err       error
}

func newCompletionCombiner(pool *pgxpool.Pool) *completionCombiner {
	return &completionCombiner{pool: pool, statements: completionStatements}
}

// complete settles claims of sessionID with whatever other batches are
// waiting, and returns the tasks of claims that it completed.
func (c *completionCombiner) complete(ctx context.Context, sessionID string, claims []task.Completion) ([]task.Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &completionWaiter{sessionID: sessionID, claims: claims, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, w)
	waiting := len(c.queue)
	if c.running < c.statements {
		c.running++
		go c.run()
	}
	c.mu.Unlock()
	if c.queued != nil {
		c.queued(waiting)
	}
	select {
	case <-w.done:
		return w.tasks, w.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-w.done:
		return w.tasks, w.err
	default:
	}
	if !w.taken {
		c.queue = slices.DeleteFunc(c.queue, func(q *completionWaiter) bool { return q == w })
	}
	return nil, ctx.Err()
}

// run makes statements while batches wait, then ends.
func (c *completionCombiner) run() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxCompletionBatch)
		if n == 0 {
			c.running--
			c.mu.Unlock()
			return
		}
		batch := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		for _, w := range batch {
			w.taken = true
		}
		c.mu.Unlock()
		if c.taken != nil {
			c.taken(len(batch))
		}
		tasks, err := c.completeMany(batch)
		c.mu.Lock()
		for i, w := range batch {
			if w.err = err; err == nil {
				w.tasks = tasks[i]
			}
			close(w.done)
		}
		c.mu.Unlock()
	}
}

// completeMany settles the batch in one statement, which no caller's
// context cancels: it is the statement of callers who are still there.
// Two statements settling the same tasks in different orders can
// deadlock; that is retried.
//
// The state is tested through coalesce so that the planner cannot use the
// partial indexes of claims: on a young table, whose statistics count no
// claims, it took tasks_claimed_by for a one-row scan, read every claim
// for each claim of the batch, and took 620 ms for 1,600 (EXPLAIN
// ANALYZE). Left with the primary key, it looks each task up: 21 ms.
func (c *completionCombiner) completeMany(batch []*completionWaiter) ([][]task.Task, error) {
	var ids, sessions []string
	var attempts, reqs []int32
	var results []*string
	for i, w := range batch {
		for _, cl := range w.claims {
			ids = append(ids, cl.Token.TaskID)
			attempts = append(attempts, int32(cl.Token.Attempt))
			sessions = append(sessions, w.sessionID)
			reqs = append(reqs, int32(i))
			var res *string
			if cl.Result != nil {
				s := string(cl.Result)
				res = &s
			}
			results = append(results, res)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	out := make([][]task.Task, len(batch))
	var err error
	for try := 0; try < 5; try++ {
		clear(out)
		var rows []completedRow
		rows, err = queryAll(ctx, c.pool, scanCompletedRow, `
			WITH input AS (
				SELECT * FROM unnest($1::uuid[], $2::int[], $3::jsonb[], $4::text[], $5::int[]) AS i(task_id, attempt, result, session_id, req))
			UPDATE taskqueue.tasks t SET state = 'completed', result = i.result, claim_expires_at = NULL,
			       finished_at = now(), updated_at = now()
			FROM input i
			WHERE t.task_id = i.task_id AND t.attempt = i.attempt AND coalesce(t.state, '') = 'claimed'
			  AND t.claimed_by_session_id = i.session_id
			RETURNING `+taskColumns+`, i.req`, ids, attempts, results, sessions, reqs)
		if err == nil {
			for _, r := range rows {
				out[r.req] = append(out[r.req], r.task)
			}
			return out, nil
		}
		if !pg.HasCode(err, pg.DeadlockDetected) {
			break
		}
	}
	return nil, err
}

type completedRow struct {
	task task.Task
	req  int
}

func scanCompletedRow(row pgx.CollectableRow) (completedRow, error) {
	var r completedRow
	var err error
	r.task, err = scanTaskWith(row, &r.req)
	return r, err
}
