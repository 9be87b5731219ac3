package adapters

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// claimCombiner makes the claims that arrive while one is in flight in one
// statement, taskqueue.claim_tasks_many (migration 0005), as River's single
// fetcher does for a whole client. Concurrent claims each ran their own
// statement, and those statements walked the same head of the claim-order
// index, skipping each other's locked rows and waiting on the same buffers:
// that, not the Go process, bounded the queue (docs/BENCHMARKS.md). Each
// request keeps, inside the combined statement, its session's lock,
// capacity, affinities, types, limit and byte budget.
//
// At most claimStatements statements are in flight at a time, so that
// claims use both cores of a small machine. The claims that arrive
// meanwhile wait and go together in the next, at most maxClaimBatch of them
// and one per session: a session's second claim goes in a later statement,
// after its first has taken its share of the session's capacity.
//
// A caller that leaves (its context done) before its claims are made is
// dropped from the statement, or, when it was in one already, its claims are
// put back as if never made (release_claims): its tokens never left the
// task queue. A statement whose callers have all left is cancelled. This is
// what a lone claim gave by cancelling its statement; claims that cannot be
// put back (the database failing) stay with the session until their lease
// runs out and the reaper takes them back, and are logged.
type claimCombiner struct {
	pool *pgxpool.Pool
	log  *zap.Logger

	mu       sync.Mutex
	queue    []*claimWaiter
	running  int             // statements' goroutines
	sessions map[string]bool // the sessions of the statements in flight
	// statements is how many statements may be in flight at once:
	// claimStatements, or 1 in tests that gather claims into one.
	statements int

	// Test hooks, nil outside tests: queued is called with the number of
	// claims waiting once one more waits, taken with a statement's requests
	// before it runs, made after it ran and before its claims are handed
	// over.
	queued func(int)
	taken  func([]task.ClaimRequest)
	made   func()
}

// claimStatements is how many claim statements may be in flight at once.
const claimStatements = 2

// maxClaimBatch bounds the requests of one statement: 64 claims of up to
// 100 tasks each.
const maxClaimBatch = 64

// releaseTimeout bounds putting back the claims of a caller who left.
const releaseTimeout = 10 * time.Second

// claimWaiter is one caller's claim. Its fields after req are guarded by
// the combiner's mutex; done is closed, under it, once the result is set.
type claimWaiter struct {
	req       task.ClaimRequest
	done      chan struct{}
	batch     *claimBatch // nil while queued
	abandoned bool
	claims    []task.Claim
	cut       bool
	err       error
}

// claimBatch is one statement's callers that are still there.
type claimBatch struct {
	live   int
	cancel context.CancelFunc
}

// claimResult is what the statement claimed for one request; cut says that
// claim_bound stopped it short of the byte budget (claim_tasks's cut).
type claimResult struct {
	claims []task.Claim
	cut    bool
}

func newClaimCombiner(pool *pgxpool.Pool, log *zap.Logger) *claimCombiner {
	return &claimCombiner{pool: pool, log: log, sessions: make(map[string]bool), statements: claimStatements}
}

// claim makes req's claim with whatever other claims are waiting.
func (c *claimCombiner) claim(ctx context.Context, req task.ClaimRequest) ([]task.Claim, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	w := &claimWaiter{req: req, done: make(chan struct{})}
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
		return w.claims, w.cut, w.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-w.done:
		// Handed over as the caller left: the caller has it, as it would
		// have had a lone claim's that committed as its context ended.
		return w.claims, w.cut, w.err
	default:
	}
	if w.batch == nil {
		c.queue = slices.DeleteFunc(c.queue, func(q *claimWaiter) bool { return q == w })
	} else {
		w.abandoned = true
		if w.batch.live--; w.batch.live == 0 {
			w.batch.cancel()
		}
	}
	return nil, false, ctx.Err()
}

// run makes statements while claims wait, then ends; claim starts it again.
func (c *claimCombiner) run() {
	for {
		c.mu.Lock()
		batch := c.take()
		if len(batch) == 0 {
			c.running--
			c.mu.Unlock()
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		b := &claimBatch{live: len(batch), cancel: cancel}
		for _, w := range batch {
			w.batch = b
		}
		c.mu.Unlock()
		if c.taken != nil {
			reqs := make([]task.ClaimRequest, len(batch))
			for i, w := range batch {
				reqs[i] = w.req
			}
			c.taken(reqs)
		}
		results, err := c.claimMany(ctx, batch)
		cancel()
		if c.made != nil {
			c.made()
		}
		c.handOver(batch, results, err)
	}
}

// take removes from the queue, under the mutex, the next statement's
// requests: in arrival order, one per session and none of a session in
// another statement, at most maxClaimBatch.
func (c *claimCombiner) take() []*claimWaiter {
	var batch, rest []*claimWaiter
	for _, w := range c.queue {
		if len(batch) == maxClaimBatch || c.sessions[w.req.SessionID] {
			rest = append(rest, w)
			continue
		}
		c.sessions[w.req.SessionID] = true
		batch = append(batch, w)
	}
	c.queue = rest
	return batch
}

// handOver gives each caller still there its claims, and puts back those
// made for callers who left.
func (c *claimCombiner) handOver(batch []*claimWaiter, results []claimResult, err error) {
	var gone []*claimWaiter
	c.mu.Lock()
	for i, w := range batch {
		delete(c.sessions, w.req.SessionID)
		if w.abandoned {
			if err == nil && len(results[i].claims) > 0 {
				w.claims = results[i].claims
				gone = append(gone, w)
			}
			continue
		}
		if err != nil {
			w.err = err
		} else {
			w.claims, w.cut = results[i].claims, results[i].cut
		}
		close(w.done)
	}
	c.mu.Unlock()
	for _, w := range gone {
		c.release(w.req.SessionID, w.claims)
	}
}

// release puts back claims made for a caller who left before they could be
// handed over.
func (c *claimCombiner) release(sessionID string, claims []task.Claim) {
	ids, attempts := make([]string, len(claims)), make([]int32, len(claims))
	for i, cl := range claims {
		ids[i], attempts[i] = cl.Token.TaskID, int32(cl.Token.Attempt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT r::text FROM taskqueue.release_claims($1, $2::uuid[], $3::int[]) r`, sessionID, ids, attempts)
	var released int
	if err == nil {
		for rows.Next() {
			released++
		}
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		c.log.Warn("claims made for a caller who left were not put back; their lease will take them back",
			zap.String("session_id", sessionID), zap.Strings("task_ids", ids), zap.Error(err))
		return
	}
	c.log.Debug("claims made for a caller who left put back", zap.String("session_id", sessionID),
		zap.Int("claims", len(claims)), zap.Int("released", released))
}

// claimMany makes the batch's claims in one statement.
func (c *claimCombiner) claimMany(ctx context.Context, batch []*claimWaiter) ([]claimResult, error) {
	n := len(batch)
	ids, names := make([]string, n), make([]string, n)
	types := make([][]string, n)
	limits, capacities := make([]int32, n), make([]int32, n)
	budgets := make([]*int64, n)
	ats := make([]time.Time, n)
	for i, w := range batch {
		r := w.req
		ids[i], names[i] = r.SessionID, r.SessionName
		if len(r.Types) > 0 {
			types[i] = r.Types
		}
		limits[i], capacities[i] = int32(r.Limit), int32(r.MaxConcurrent)
		if r.MaxBytes > 0 {
			b := int64(r.MaxBytes)
			budgets[i] = &b
		}
		ats[i] = r.Now
	}
	typesJSON, err := json.Marshal(types)
	if err != nil {
		return nil, err
	}
	rows, err := c.pool.Query(ctx, `
		SELECT `+taskColumns+`, c.req, c.pos, c.cut, c.picked
		FROM taskqueue.claim_tasks_many($1, $2, $3::jsonb, $4, $5, $6, $7) c CROSS JOIN LATERAL (SELECT (c.claimed).*) t`,
		ids, names, string(typesJSON), limits, capacities, budgets, ats)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	results := make([]claimResult, n)
	positions := make([][]int, n)
	// Of each request's "any task" part: the tasks it was given, and
	// claimed.
	picked, anyClaimed := make([]int64, n), make([]int64, n)
	for rows.Next() {
		var req, pos int
		var cut bool
		var given *int64
		t, err := scanTaskWith(rows, &req, &pos, &cut, &given)
		if err != nil {
			return nil, err
		}
		i := req - 1
		results[i].claims = append(results[i].claims, task.Claim{Task: t, Token: task.ClaimTokenOf(t)})
		results[i].cut = results[i].cut || cut
		positions[i] = append(positions[i], pos)
		if given != nil {
			picked[i] = *given
			anyClaimed[i]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range results {
		results[i].cut = results[i].cut || picked[i] > anyClaimed[i]
		// The rows come in no order; each request's claims go in claim
		// order.
		sort.Sort(claimsByPos{results[i].claims, positions[i]})
	}
	return results, nil
}

// claimsByPos sorts claims by their places in their request's claim order.
type claimsByPos struct {
	claims []task.Claim
	pos    []int
}

func (c claimsByPos) Len() int           { return len(c.claims) }
func (c claimsByPos) Less(i, j int) bool { return c.pos[i] < c.pos[j] }
func (c claimsByPos) Swap(i, j int) {
	c.claims[i], c.claims[j] = c.claims[j], c.claims[i]
	c.pos[i], c.pos[j] = c.pos[j], c.pos[i]
}
