// linearizability_test.go is one test and everything it needs, some 840
// lines, on purpose: the porcupine model of a lock (linStep), the workers that
// record a history of acquires, renewals and releases across a leader
// failover, and the checker's report share their types (lin*) and are read
// together; split, each part would make sense only with the others open.

package service_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// The workload of TestLocksAreLinearizableAcrossLeaderFailover.
const (
	linClients = 8
	// linWaitKey is the one key acquired with a wait_timeout; the others are
	// only ever acquired without waiting, so no queue ever forms on them.
	linWaitKey = "lin/2"
	linTTL     = 10 * time.Minute // never runs out during the test
	// linCallTimeout bounds one call, retries included. It is long enough to
	// ride out an election on a loaded machine, so that most calls that span
	// one still end with the server's answer.
	linCallTimeout = 4 * time.Second
	// linShortCallTimeout is given to one call in five, so that some calls
	// give up while the cluster may still act on them.
	linShortCallTimeout = 600 * time.Millisecond
	// linPhase is the least time the workload runs before the first kill,
	// with a node down, and after each restart.
	linPhase           = time.Second
	linMaxOpsPerClient = 5000
	linCheckTimeout    = 60 * time.Second
)

var linKeys = []string{"lin/0", "lin/1", linWaitKey}

// TestLocksAreLinearizableAcrossLeaderFailover runs concurrent lock clients
// through every node while the leader is killed and restarted twice, and
// checks the recorded history with porcupine against a sequential model of
// the lock table: one holder per key, a re-entrant acquire returns the held
// fencing token, a new grant carries a token greater than any earlier grant
// of the key, and renew and release succeed exactly for the holder's current
// token, failing otherwise with the code that says why.
//
// An answer that leaves the outcome open (UNAVAILABLE after the client's
// retries, a deadline, a cancellation) makes the operation pending forever:
// the checker may apply it at any time after its call, or never. So is a
// refused release that the client retried after UNAVAILABLE, since the first
// attempt may have released the lock.
func TestLocksAreLinearizableAcrossLeaderFailover(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: time.Minute, HeartbeatInterval: 2 * time.Second, Quiet: true})
	hist := &linHistory{start: time.Now()}

	admin := c.Client()
	sessions := map[string]int{}
	workers := make([]*linWorker, linClients)
	seed := uint64(time.Now().UnixNano())
	t.Logf("workload seed %d", seed)
	for i := range workers {
		// Two clients on each node and two on all of them: every node serves
		// and forwards, and every node dies under some of its clients.
		node := -1
		if i < 2*len(c.Nodes) {
			node = i % len(c.Nodes)
		}
		s, tok := register(t, admin, fmt.Sprintf("lin-%d", i))
		sessions[s.GetSessionId()] = i
		workers[i] = &linWorker{
			t: t, id: i, node: node, sessionID: s.GetSessionId(), token: tok,
			cl:       linClient(t, c, node),
			hist:     hist,
			sessions: sessions,
			rnd:      rand.New(rand.NewPCG(seed, uint64(i))),
			belief:   map[string]*linBelief{},
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopWorkload := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkload()
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(stop)
		}()
	}

	// A phase lasts until enough writes were answered, and at least linPhase
	// so that the workload meets the cluster in every state for a while.
	phase := func(since int64, node, n int, ok func(linRecord) bool, what string) {
		t.Helper()
		hist.waitFor(t, since, node, n, ok, what)
		time.Sleep(linPhase - time.Duration(hist.now()-since))
	}
	phase(0, -1, 20, linWritten, "too few writes before the first kill")
	for round := 1; round <= 2; round++ {
		leader := c.Leader()
		node := slices.Index(c.Nodes, leader)
		killedAt := hist.now()
		c.Kill(leader)
		hist.mark(fmt.Sprintf("kill %s (leader)", leader.ID), killedAt)
		// The killed node's clients may hold every key, so that nobody
		// else can write; but the new leader must answer.
		phase(killedAt, -1, 10, linAnswered, fmt.Sprintf("round %d: too few writes answered after killing %s", round, leader.ID))

		c.Restart(leader)
		restartedAt := hist.now()
		hist.mark("restart "+leader.ID, restartedAt)
		// Writes resume through the restarted node itself, not only around it.
		hist.waitFor(t, restartedAt, node, 5, linWritten, fmt.Sprintf("round %d: too few writes through %s after its restart", round, leader.ID))
		hist.mark(fmt.Sprintf("writes through %s again", leader.ID), hist.now())
		phase(restartedAt, -1, 20, linWritten, fmt.Sprintf("round %d: too few writes after restarting %s", round, leader.ID))
		// The next kill must leave a majority that can elect a leader.
		c.WaitConverged()
	}
	tail := hist.now()
	phase(tail, -1, 20, linWritten, "too few writes after the last restart")
	stopWorkload()

	ops, stats := hist.operations()
	t.Logf("%d operations in %v: %s", stats.total, time.Duration(hist.now()), stats)
	for _, m := range hist.marks {
		t.Logf("at %v: %s", time.Duration(m.at).Round(time.Millisecond), m.what)
	}
	for _, key := range linKeys {
		if stats.granted[key] == 0 {
			t.Errorf("no acquire of %s succeeded: the history checks little there", key)
		}
	}

	linCheckFencingOrder(t, hist.records)

	model := linModel()
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, linCheckTimeout)
	t.Logf("porcupine: %s in %v over %d operations (%d with an unknown outcome)", res, time.Since(checkStart).Round(time.Millisecond), len(ops), stats.unknownChecked)
	if res != porcupine.Ok {
		t.Errorf("lock history is not linearizable: %s", res)
		linWriteFailure(t, model, info, ops, hist)
	}
}

// linClient is a client of one node (all when node is -1) that counts the
// attempts of each call, so that an answer to a retry can be told apart.
func linClient(t *testing.T, c *coordtest.Cluster, node int) *client.Client {
	t.Helper()
	addrs := c.Addrs()
	if node >= 0 {
		addrs = []string{c.Nodes[node].GRPCAddr}
	}
	return linClientOf(t, addrs, c.AdminToken)
}

// linClientOf is a client of addrs that counts the attempts of each call.
func linClientOf(t testing.TB, addrs []string, token string) *client.Client {
	t.Helper()
	// Added after the client's own interceptors, this one is the innermost
	// and sees every attempt the retrying interceptor makes.
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if a, ok := ctx.Value(linAttemptsKey{}).(*linAttempts); ok {
			a.n++
			if status.Code(err) == codes.Unavailable {
				a.unavailable++
			}
		}
		return err
	}
	cl, err := client.New(client.Options{Addrs: addrs, Token: token, DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(count)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

type linAttemptsKey struct{}

type linAttempts struct{ n, unavailable int }

// The model.

type linOpKind int

const (
	linAcquire linOpKind = iota
	linRenew
	linRelease
	linGet
)

func (k linOpKind) String() string {
	return [...]string{"acquire", "renew", "release", "get"}[k]
}

type linResult int

const (
	linOK       linResult = iota // granted, renewed, released, or read
	linHeld                      // ABORTED, or a wait that ran out: another session holds it
	linQueued                    // ABORTED: free, but others queue for it
	linNotFound                  // NOT_FOUND: nobody holds it
	linNotOwner                  // PERMISSION_DENIED: another session holds it
	linStale                     // FAILED_PRECONDITION: held under another fencing token
	linUnknown                   // the client never learnt the outcome
)

func (r linResult) String() string {
	return [...]string{"ok", "held", "queued", "not-found", "not-owner", "stale", "unknown"}[r]
}

// Holders that are no worker.
const (
	linNobody   = -1 // of a free lock
	linStranger = -2 // a session the test did not register
)

type linInput struct {
	Op      linOpKind
	Key     string
	Session int           // the caller, by worker index
	Token   uint64        // fencing token given to renew and release
	Wait    time.Duration // acquire's wait_timeout
}

type linOutput struct {
	Result linResult
	Holder int    // the lock's owner in an ok answer
	Token  uint64 // the lock's fencing token in an ok answer
}

// linLockState is one key of the lock table.
type linLockState struct {
	Holder int // linNobody when free
	// Token is the holder's fencing token, 0 while it is unknown: the lock was
	// granted by an acquire whose answer was lost, and nobody has seen the
	// token since.
	Token uint64
	// Floor is the least fencing token a new grant may carry.
	Floor uint64
}

// learn checks a fencing token seen for the held lock, taking it as the
// holder's token if that was unknown so far.
func (s linLockState) learn(token uint64) (bool, linLockState) {
	if s.Token == 0 {
		if token < s.Floor {
			return false, s
		}
		return true, linLockState{Holder: s.Holder, Token: token, Floor: token + 1}
	}
	return token == s.Token, s
}

func linStep(s linLockState, in linInput, out linOutput) (bool, linLockState) {
	me := in.Session
	if out.Result == linUnknown {
		// The operation may have taken effect at any time after its call,
		// or never. It is applied where the checker places it; "never" is
		// placing it after everything else, where nothing observes it.
		switch {
		case in.Op == linAcquire && s.Holder == linNobody:
			return true, linLockState{Holder: me, Floor: s.Floor}
		case in.Op == linRelease && s.Holder == me && s.Token != 0 && s.Token == in.Token:
			return true, linLockState{Holder: linNobody, Floor: s.Floor}
		}
		// A release under a token the holder never saw is stale: every
		// token a client gives was seen by it, and seeing it made it known.
		return true, s
	}
	switch in.Op {
	case linAcquire:
		switch out.Result {
		case linOK:
			if out.Holder != me {
				return false, s
			}
			switch s.Holder {
			case linNobody:
				if out.Token < s.Floor {
					return false, s
				}
				return true, linLockState{Holder: me, Token: out.Token, Floor: out.Token + 1}
			case me: // re-entrant: the same grant
				return s.learn(out.Token)
			}
			return false, s
		case linHeld:
			return s.Holder != linNobody && s.Holder != me, s
		case linQueued:
			// Fairness among waiters, which the model does not track; only
			// possible where some acquire waits, and never for the holder.
			return in.Key == linWaitKey && s.Holder != me, s
		}
		return false, s

	case linRenew, linRelease:
		var want linResult
		switch {
		case s.Holder == linNobody:
			want = linNotFound
		case s.Holder != me:
			want = linNotOwner
		case s.Token == 0:
			if out.Result == linStale {
				return true, s
			}
			want = linOK
		case s.Token != in.Token:
			want = linStale
		default:
			want = linOK
		}
		if out.Result != want {
			return false, s
		}
		if want != linOK {
			return true, s
		}
		ok, next := s.learn(in.Token)
		if !ok {
			return false, s
		}
		if in.Op == linRelease {
			return true, linLockState{Holder: linNobody, Floor: next.Floor}
		}
		return out.Holder == me && out.Token == in.Token, next

	case linGet:
		switch out.Result {
		case linNotFound:
			return s.Holder == linNobody, s
		case linOK:
			if s.Holder == linNobody || out.Holder != s.Holder {
				return false, s
			}
			return s.learn(out.Token)
		}
	}
	return false, s
}

func linModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			for _, op := range history {
				k := op.Input.(linInput).Key
				byKey[k] = append(byKey[k], op)
			}
			var out [][]porcupine.Operation
			for _, k := range slices.Sorted(maps.Keys(byKey)) {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() any { return linLockState{Holder: linNobody} },
		Step: func(s, in, out any) (bool, any) {
			return linStep(s.(linLockState), in.(linInput), out.(linOutput))
		},
		DescribeOperation: func(in, out any) string { return linDescribe(in.(linInput), out.(linOutput)) },
		DescribeState: func(s any) string {
			st := s.(linLockState)
			switch {
			case st.Holder == linNobody:
				return fmt.Sprintf("free (next token >= %d)", st.Floor)
			case st.Token == 0:
				return fmt.Sprintf("held by c%d, token unseen (>= %d)", st.Holder, st.Floor)
			}
			return fmt.Sprintf("held by c%d, token %d", st.Holder, st.Token)
		},
	}
}

func linDescribe(in linInput, out linOutput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "c%d %s(%s", in.Session, in.Op, in.Key)
	switch in.Op {
	case linAcquire:
		if in.Wait > 0 {
			fmt.Fprintf(&b, ", wait %v", in.Wait)
		}
	case linRenew, linRelease:
		fmt.Fprintf(&b, ", token %d", in.Token)
	}
	b.WriteString(") -> ")
	if out.Result == linOK && in.Op != linRelease {
		fmt.Fprintf(&b, "c%d token %d", out.Holder, out.Token)
	} else {
		b.WriteString(out.Result.String())
	}
	return b.String()
}

// The workload.

// linBelief is what a client knows of its own hold on a key; it only steers
// the workload, the model checks the answers.
type linBelief struct {
	state int // linFree, linMine or linUnsure
	token uint64
	seen  uint64 // the last fencing token this client saw for the key
}

const (
	linFree = iota
	linMine
	linUnsure
)

type linWorker struct {
	t         *testing.T
	id, node  int
	sessionID string
	token     string
	cl        *client.Client
	hist      *linHistory
	sessions  map[string]int // session id → worker; read-only while running
	rnd       *rand.Rand
	belief    map[string]*linBelief
	// keys, maxOps and pause shape the workload; zero values are this
	// test's (linKeys, linMaxOpsPerClient, no pause).
	keys   []string
	maxOps int
	pause  time.Duration
}

func (w *linWorker) run(stop <-chan struct{}) {
	keys, maxOps := w.keys, w.maxOps
	if keys == nil {
		keys = linKeys
	}
	if maxOps == 0 {
		maxOps = linMaxOpsPerClient
	}
	for range maxOps {
		select {
		case <-stop:
			return
		case <-time.After(w.pause):
		}
		key := keys[w.rnd.IntN(len(keys))]
		b := w.belief[key]
		if b == nil {
			b = &linBelief{}
			w.belief[key] = b
		}
		in := linInput{Key: key, Session: w.id}
		p := w.rnd.IntN(100)
		switch b.state {
		case linUnsure:
			in.Op = linGet
		case linMine:
			switch {
			case p < 35:
				in.Op, in.Token = linRelease, b.token
			case p < 65:
				in.Op, in.Token = linRenew, b.token
			case p < 80:
				// Re-entrant, with a wait_timeout on the waited-for key:
				// the holder must get its grant back at once, never queue
				// behind the sessions waiting for it.
				in.Op = linAcquire
				if key == linWaitKey {
					in.Wait = time.Duration(20+w.rnd.IntN(280)) * time.Millisecond
				}
			case p < 90:
				in.Op = linGet
			default:
				in.Op, in.Token = []linOpKind{linRenew, linRelease}[p%2], b.token-1
			}
		default:
			switch {
			case p < 70:
				in.Op = linAcquire
				if key == linWaitKey {
					in.Wait = time.Duration(20+w.rnd.IntN(280)) * time.Millisecond
				}
			case p < 80:
				in.Op = linGet
			default:
				in.Op, in.Token = []linOpKind{linRenew, linRelease}[p%2], max(b.seen, 1)
			}
		}
		out := w.do(in)
		w.learn(b, in, out)
	}
}

// learn updates a belief with an answer.
func (w *linWorker) learn(b *linBelief, in linInput, out linOutput) {
	current := b.state == linMine && in.Token == b.token
	switch {
	case out.Result == linOK && in.Op == linRelease:
		b.state = linFree
	case out.Result == linOK:
		b.seen = max(b.seen, out.Token)
		if out.Holder == w.id {
			b.state, b.token = linMine, out.Token
		} else {
			b.state = linFree
		}
	case in.Op == linAcquire && out.Result == linUnknown:
		b.state = linUnsure
	case in.Op == linAcquire:
		if b.state == linMine {
			b.state = linUnsure // refused to its holder: the model will tell
		}
	case in.Op == linGet && out.Result == linNotFound:
		b.state = linFree
	case in.Op == linRenew && out.Result == linUnknown:
		// A renewal changes no owner.
	case (in.Op == linRenew || in.Op == linRelease) && current:
		b.state = linUnsure
	}
}

// do runs one operation and records it.
func (w *linWorker) do(in linInput) linOutput {
	attempts := &linAttempts{}
	timeout := linCallTimeout
	if w.rnd.IntN(5) == 0 {
		timeout = linShortCallTimeout/4 + time.Duration(w.rnd.Int64N(int64(linShortCallTimeout*3/4)))
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), linAttemptsKey{}, attempts), timeout)
	defer cancel()
	locks := w.cl.Locks()
	call := w.hist.now()
	var lock *coordinatorv1.Lock
	var err error
	switch in.Op {
	case linAcquire:
		lock, err = acquire(ctx, w.cl, in.Key, w.sessionID, w.token, linTTL, in.Wait)
	case linRenew:
		var resp *coordinatorv1.RenewLockResponse
		resp, err = locks.RenewLock(ctx, &coordinatorv1.RenewLockRequest{Key: in.Key, SessionId: w.sessionID, SessionToken: w.token, FencingToken: in.Token, Ttl: durationpb.New(linTTL)})
		lock = resp.GetLock()
	case linRelease:
		_, err = locks.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{Key: in.Key, SessionId: w.sessionID, SessionToken: w.token, FencingToken: in.Token})
	case linGet:
		var resp *coordinatorv1.GetLockResponse
		resp, err = locks.GetLock(ctx, &coordinatorv1.GetLockRequest{Key: in.Key})
		lock = resp.GetLock()
	}
	ret := w.hist.now()

	out := linOutput{Result: linOK}
	switch {
	case err != nil:
		out.Result = w.classify(ctx, in, err, attempts)
	case in.Op != linRelease:
		out.Holder, out.Token = linStranger, lock.GetFencingToken()
		if h, ok := w.sessions[lock.GetOwnerSessionId()]; ok {
			out.Holder = h
		}
	}
	w.hist.add(linRecord{client: w.id, node: w.node, in: in, out: out, call: call, ret: ret, attempts: attempts.n, err: err})
	return out
}

// classify turns an error into a definite answer, or linUnknown when the
// call may or may not have taken effect.
func (w *linWorker) classify(ctx context.Context, in linInput, err error, attempts *linAttempts) linResult {
	if ctx.Err() != nil {
		return linUnknown
	}
	st := status.Convert(err)
	res := linUnknown
	switch msg := st.Message(); st.Code() {
	case codes.Unavailable, codes.Canceled, codes.Internal, codes.Unknown:
		return linUnknown
	case codes.DeadlineExceeded:
		if in.Op == linAcquire && msg == app.ErrLockWaitTimedOut.Error() {
			return linHeld
		}
		return linUnknown // a deadline inside the cluster, not an answer
	case codes.Aborted:
		switch msg {
		case state.ErrLockHeld.Error():
			res = linHeld
		case app.ErrLockQueued.Error():
			res = linQueued
		}
	case codes.NotFound:
		if msg == state.ErrLockNotFound.Error() {
			res = linNotFound
		}
	case codes.PermissionDenied:
		if msg == state.ErrNotLockOwner.Error() {
			res = linNotOwner
		}
	case codes.FailedPrecondition:
		if msg == state.ErrStaleFencing.Error() {
			res = linStale
		}
	}
	if res == linUnknown {
		w.t.Errorf("c%d %s(%s): unexpected answer %v", w.id, in.Op, in.Key, err)
		return linUnknown
	}
	// The client retries UNAVAILABLE, and an attempt that said UNAVAILABLE
	// may have released the lock before a retry found it gone: that refusal
	// answers the repeat, not the call. Acquire and renew have no such
	// problem: repeating them is harmless.
	if in.Op == linRelease && attempts.unavailable > 0 {
		return linUnknown
	}
	return res
}

// The history.

type linRecord struct {
	client   int
	node     int // the only node the client talks to, -1 for all
	in       linInput
	out      linOutput
	call     int64 // since the start of the test, in ns
	ret      int64 // when the answer came, even one that is not an outcome
	attempts int
	err      error
}

type linMark struct {
	at   int64
	what string
}

type linHistory struct {
	start   time.Time
	mu      sync.Mutex
	records []linRecord
	marks   []linMark
}

func (h *linHistory) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *linHistory) add(r linRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
}

func (h *linHistory) mark(what string, at int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.marks = append(h.marks, linMark{at, what})
}

// linWritten is a write that succeeded.
func linWritten(r linRecord) bool { return r.in.Op != linGet && r.out.Result == linOK }

// linAnswered is a write that got a definite answer.
func linAnswered(r linRecord) bool { return r.in.Op != linGet && r.out.Result != linUnknown }

// waitFor waits until n operations called after since through node (any
// when -1) are ok. If they are not, it shows what the clients got lately.
func (h *linHistory) waitFor(t *testing.T, since int64, node, n int, ok func(linRecord) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.mu.Lock()
		count := 0
		for _, r := range h.records {
			if r.call > since && (node < 0 || r.node == node) && ok(r) {
				count++
			}
		}
		h.mu.Unlock()
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var recent []linRecord
	for _, r := range h.records {
		if r.call > since && (node < 0 || r.node == node) {
			recent = append(recent, r)
		}
	}
	for _, r := range recent[max(0, len(recent)-30):] {
		t.Logf("[%v, %v] via node %d, %d attempts: %s (%v)", time.Duration(r.call), time.Duration(r.ret), r.node, r.attempts, linDescribe(r.in, r.out), r.err)
	}
	t.Fatalf("%s within 30s", what)
}

type linStats struct {
	total, unknown, unknownChecked, retried int
	byResult                                map[string]int
	granted                                 map[string]int
}

func (s linStats) String() string {
	keys := slices.Sorted(maps.Keys(s.byResult))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, s.byResult[k])
	}
	return fmt.Sprintf("%d with an unknown outcome, %d answered after a retry; %s", s.unknown, s.retried, strings.Join(parts, ", "))
}

// operations is the history for porcupine: an operation with an unknown
// outcome never returns, and reads and renewals with one are left out, since
// they change nothing.
func (h *linHistory) operations() ([]porcupine.Operation, linStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	stats := linStats{byResult: map[string]int{}, granted: map[string]int{}}
	var ops []porcupine.Operation
	for _, r := range h.records {
		stats.total++
		stats.byResult[r.in.Op.String()+" "+r.out.Result.String()]++
		if r.attempts > 1 {
			stats.retried++
		}
		if r.in.Op == linAcquire && r.out.Result == linOK {
			stats.granted[r.in.Key]++
		}
		ret := r.ret
		if r.out.Result == linUnknown {
			stats.unknown++
			if r.in.Op == linGet || r.in.Op == linRenew {
				continue
			}
			stats.unknownChecked++
			ret = math.MaxInt64
		}
		ops = append(ops, porcupine.Operation{ClientId: r.client, Input: r.in, Call: r.call, Output: r.out, Return: ret})
	}
	return ops, stats
}

// linCheckFencingOrder checks grants directly: a grant that began after
// another grant of the same key ended never carries a smaller fencing token,
// nor an equal one when it went to another session.
func linCheckFencingOrder(t *testing.T, records []linRecord) {
	t.Helper()
	grants := map[string][]linRecord{}
	for _, r := range records {
		if r.in.Op == linAcquire && r.out.Result == linOK {
			grants[r.in.Key] = append(grants[r.in.Key], r)
		}
	}
	for key, gs := range grants {
		sort.Slice(gs, func(i, j int) bool { return gs[i].call < gs[j].call })
		for i, a := range gs {
			for _, b := range gs[i+1:] {
				if a.ret >= b.call {
					continue // concurrent: the model orders them
				}
				if b.out.Token < a.out.Token || (b.out.Token == a.out.Token && b.out.Holder != a.out.Holder) {
					t.Errorf("%s: grant to c%d with token %d at %v came after the grant to c%d with token %d ended at %v",
						key, b.out.Holder, b.out.Token, time.Duration(b.call), a.out.Holder, a.out.Token, time.Duration(a.ret))
				}
			}
		}
	}
}

// linWriteFailure logs where each key's history stops being linearizable
// and saves porcupine's visualization and the whole history.
func linWriteFailure(t *testing.T, model porcupine.Model, info porcupine.LinearizationInfo, ops []porcupine.Operation, h *linHistory) {
	t.Helper()
	perKey := map[string]int{}
	for _, op := range ops {
		perKey[op.Input.(linInput).Key]++
	}
	for _, partition := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, l := range partition {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == 0 {
			continue
		}
		key := longest[0].Input.(linInput).Key
		if len(longest) == perKey[key] {
			continue
		}
		t.Logf("%s: the longest linearization found covers %d of %d operations; its end:", key, len(longest), perKey[key])
		st := model.Init()
		for i, op := range longest {
			_, st = model.Step(st, op.Input, op.Output)
			if i >= len(longest)-12 {
				t.Logf("  [%v, %v] %s => %s", time.Duration(op.Call), linReturn(op.Return), model.DescribeOperation(op.Input, op.Output), model.DescribeState(st))
			}
		}
	}
	if f, err := os.CreateTemp("", "coordinator-linearizability-*.html"); err == nil {
		_ = f.Close()
		if err := porcupine.VisualizePath(model, info, f.Name()); err != nil {
			t.Logf("visualization: %v", err)
		} else {
			t.Logf("visualization written to %s", f.Name())
		}
	}
	f, err := os.CreateTemp("", "coordinator-linearizability-*.txt")
	if err != nil {
		t.Logf("history: %v", err)
		return
	}
	defer f.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	type line struct {
		at   int64
		text string
	}
	var lines []line
	for _, m := range h.marks {
		lines = append(lines, line{m.at, "---- " + m.what})
	}
	for _, r := range h.records {
		node := "all"
		if r.node >= 0 {
			node = fmt.Sprintf("node-%d", r.node+1)
		}
		text := fmt.Sprintf("[%v, %v] via %s, %d attempts: %s", time.Duration(r.call), time.Duration(r.ret), node, r.attempts, linDescribe(r.in, r.out))
		if r.err != nil {
			text += fmt.Sprintf(" (%v)", r.err)
		}
		lines = append(lines, line{r.call, text})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at < lines[j].at })
	for _, l := range lines {
		fmt.Fprintln(f, l.text)
	}
	t.Logf("history written to %s", f.Name())
}

func linReturn(ret int64) string {
	if ret == math.MaxInt64 {
		return "never"
	}
	return time.Duration(ret).String()
}
