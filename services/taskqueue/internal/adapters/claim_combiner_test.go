package adapters

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// combinerRig holds a repository's claim combiner, allowed one statement
// in flight, at its first statement
// (a claim of nothing), so that the claims a test starts meanwhile all wait
// and go together in the next one, whose requests it records.
type combinerRig struct {
	repo    *TaskPostgresRepository
	queued  chan int
	release chan struct{}
	blocked chan struct{}

	mu      sync.Mutex
	batches [][]task.ClaimRequest
}

func newCombinerRig(t *testing.T, r repositories) *combinerRig {
	t.Helper()
	repo := r.tasks.(*TaskPostgresRepository)
	rig := &combinerRig{repo: repo, queued: make(chan int, 100), release: make(chan struct{}), blocked: make(chan struct{})}
	repo.claims.statements = 1
	first := true
	repo.claims.queued = func(n int) { rig.queued <- n }
	repo.claims.taken = func(reqs []task.ClaimRequest) {
		rig.mu.Lock()
		rig.batches = append(rig.batches, reqs)
		rig.mu.Unlock()
		if first {
			first = false
			close(rig.blocked)
			<-rig.release
		}
	}
	go func() {
		_, _, _ = repo.Claim(context.Background(), task.ClaimRequest{SessionID: "blocker", SessionName: "blocker",
			Types: []string{"nothing-" + uuid.NewString()}, Limit: 1, MaxConcurrent: 1})
	}()
	<-rig.blocked
	<-rig.queued // the blocker's own
	return rig
}

// waitQueued returns once n claims wait behind the blocker.
func (rig *combinerRig) waitQueued(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-rig.queued:
			if got >= n {
				return
			}
		case <-timeout:
			t.Fatalf("%d claims never queued", n)
		}
	}
}

func (rig *combinerRig) batchesTaken() [][]task.ClaimRequest {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return append([][]task.ClaimRequest(nil), rig.batches...)
}

func enqueueOf(t *testing.T, r repositories, typ, lessonID string, priority, n int) []task.Task {
	t.Helper()
	var nts []task.NewTask
	for range n {
		nts = append(nts, task.NewTask{ID: uuid.NewString(), IdempotencyKey: uuid.NewString(), Type: typ, Payload: []byte(`{}`),
			Priority: priority, LessonID: lessonID, MaxAttempts: 3, ClaimTimeout: time.Minute})
	}
	out, err := r.tasks.Enqueue(context.Background(), nts)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	tasks := make([]task.Task, len(out))
	for i, e := range out {
		tasks[i] = e.Task
	}
	return tasks
}

func lessonWithAffinity(t *testing.T, r repositories, sessionName string) string {
	t.Helper()
	ctx := context.Background()
	l, err := r.lessons.CreateLesson(ctx, task.Lesson{ID: uuid.NewString(), Project: "combiner", Name: "l-" + uuid.NewString()[:8], Metadata: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.affinities.SetAffinity(ctx, task.Affinity{SessionName: sessionName, LessonID: l.ID, Score: 10}); err != nil {
		t.Fatal(err)
	}
	return l.ID
}

type claimOutcome struct {
	claims []task.Claim
	more   bool
	err    error
}

// TestClaimCombinerKeepsEachRequest: claims of sessions with different
// affinities, types, limits, capacities and byte budgets, made in one
// statement, each get what the same claim alone would: their own lesson's
// tasks first, no more than their limit and free capacity, only their
// types, within their budget; and no task goes to two of them.
func TestClaimCombinerKeepsEachRequest(t *testing.T) {
	r := openRepositories(t)
	typ, other := "comb-"+uuid.NewString()[:8], "comb-other-"+uuid.NewString()[:8]
	nameA, nameB := "comb-a-"+uuid.NewString()[:8], "comb-b-"+uuid.NewString()[:8]
	lessonA, lessonB := lessonWithAffinity(t, r, nameA), lessonWithAffinity(t, r, nameB)
	enqueueOf(t, r, typ, lessonA, 0, 5)
	enqueueOf(t, r, typ, lessonB, 0, 5)
	// Lessonless tasks come first in the claim order of any task.
	anyTasks := enqueueOf(t, r, typ, "", 5, 20)
	enqueueOf(t, r, other, "", 0, 3)

	// claim_bound puts each of these claims at 644 bytes or less; they
	// measure 400 here, so that the statement claims 1 within 1,000 bytes
	// and the exact measure one more.
	size := func(task.Claim) int { return 400 }
	reqs := map[string]task.ClaimRequest{
		"A: its lesson, limit 3":              {SessionID: "comb-a", SessionName: nameA, Types: []string{typ}, Limit: 3, MaxConcurrent: 10},
		"B: its lesson, capacity 4":           {SessionID: "comb-b", SessionName: nameB, Types: []string{typ}, Limit: 10, MaxConcurrent: 4},
		"C: any task, limit 6":                {SessionID: "comb-c", SessionName: "comb-c", Types: []string{typ}, Limit: 6, MaxConcurrent: 6},
		"D: any task, a budget of 2.5 claims": {SessionID: "comb-d", SessionName: "comb-d", Types: []string{typ}, Limit: 10, MaxConcurrent: 10, MaxBytes: 1000, Size: size},
		"E: another type, 3 of them":          {SessionID: "comb-e", SessionName: "comb-e", Types: []string{other}, Limit: 5, MaxConcurrent: 5},
	}
	rig := newCombinerRig(t, r)
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := make(map[string]claimOutcome)
	for name, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			claims, more, err := r.tasks.Claim(context.Background(), req)
			mu.Lock()
			got[name] = claimOutcome{claims, more, err}
			mu.Unlock()
		}()
	}
	rig.waitQueued(t, len(reqs))
	close(rig.release)
	wg.Wait()

	if b := rig.batchesTaken(); len(b) < 2 || len(b[1]) != len(reqs) {
		t.Fatalf("statements' requests: %v; want the %d claims in one statement after the blocker's", len(b), len(reqs))
	}
	anyIDs := make(map[string]bool)
	for _, tk := range anyTasks {
		anyIDs[tk.ID] = true
	}
	seen := make(map[string]string)
	for name, out := range got {
		if out.err != nil {
			t.Fatalf("%s: %v", name, out.err)
		}
		for _, c := range out.claims {
			if prev, ok := seen[c.Task.ID]; ok {
				t.Errorf("task %s claimed by %s and by %s", c.Task.ID, prev, name)
			}
			seen[c.Task.ID] = name
			if c.Task.ClaimedBySessionID != reqs[name].SessionID || c.Task.State != task.Claimed || c.Token != task.ClaimTokenOf(c.Task) || c.Token.Attempt != 1 {
				t.Errorf("%s: claim %+v", name, c)
			}
		}
	}
	expect := func(name string, n int, more bool, from func(task.Task) bool) {
		t.Helper()
		out := got[name]
		if len(out.claims) != n || out.more != more {
			t.Errorf("%s: %d claims, more %v; want %d, more %v", name, len(out.claims), out.more, n, more)
		}
		for _, c := range out.claims {
			if !from(c.Task) {
				t.Errorf("%s: claimed %+v, not a task it should have had first", name, c.Task)
			}
		}
	}
	ofLesson := func(id string) func(task.Task) bool { return func(tk task.Task) bool { return tk.LessonID == id } }
	isAny := func(tk task.Task) bool { return anyIDs[tk.ID] }
	expect("A: its lesson, limit 3", 3, false, ofLesson(lessonA))
	expect("B: its lesson, capacity 4", 4, false, ofLesson(lessonB))
	expect("C: any task, limit 6", 6, false, isAny)
	expect("D: any task, a budget of 2.5 claims", 2, true, isAny)
	expect("E: another type, 3 of them", 3, false, func(tk task.Task) bool { return tk.Type == other })

	// The capacity is the session's: a second claim by B finds it full.
	second, _, err := r.tasks.Claim(context.Background(), reqs["B: its lesson, capacity 4"])
	if err != nil || len(second) != 0 {
		t.Fatalf("B's second claim = %d claims, %v; want none, its capacity is held", len(second), err)
	}
}

// TestClaimCombinerOneSessionPerStatement: two claims of one session never
// share a statement, so that together they stay within its capacity.
func TestClaimCombinerOneSessionPerStatement(t *testing.T) {
	r := openRepositories(t)
	typ := "comb-same-" + uuid.NewString()[:8]
	enqueueOf(t, r, typ, "", 0, 10)
	rig := newCombinerRig(t, r)
	req := task.ClaimRequest{SessionID: "comb-same", SessionName: "comb-same", Types: []string{typ}, Limit: 3, MaxConcurrent: 4}
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			claims, _, err := r.tasks.Claim(context.Background(), req)
			if err != nil {
				t.Error(err)
			}
			counts[i] = len(claims)
		}()
	}
	rig.waitQueued(t, 2)
	close(rig.release)
	wg.Wait()
	if counts[0]+counts[1] != 4 {
		t.Errorf("the two claims got %v tasks; want 4 in all, the session's capacity", counts)
	}
	for _, b := range rig.batchesTaken() {
		sessions := make(map[string]bool)
		for _, q := range b {
			if sessions[q.SessionID] {
				t.Errorf("a statement claimed twice for session %s", q.SessionID)
			}
			sessions[q.SessionID] = true
		}
	}
}

// TestClaimCombinerCallerGone: a caller who leaves before its statement
// claims nothing; one who leaves while its statement runs gets nothing and
// its claims are put back at the attempt they had, while the claims of the
// others in that statement are theirs. Either way the tasks are claimable
// at once, with no attempt spent.
func TestClaimCombinerCallerGone(t *testing.T) {
	for _, tt := range []struct {
		name string
		// inFlight: the caller leaves once the statement has run and before
		// its claims are handed over; else while it waits for a statement.
		inFlight bool
	}{{"while queued", false}, {"while its statement runs", true}} {
		t.Run(tt.name, func(t *testing.T) {
			r := openRepositories(t)
			gone, stays := "comb-gone-"+uuid.NewString()[:8], "comb-stays-"+uuid.NewString()[:8]
			goneTasks := enqueueOf(t, r, gone, "", 0, 3)
			enqueueOf(t, r, stays, "", 0, 2)
			rig := newCombinerRig(t, r)
			repo := rig.repo
			made := make(chan struct{})
			proceed := make(chan struct{})
			if tt.inFlight {
				statements := 0
				repo.claims.made = func() {
					// The second statement is the one of the two callers;
					// the first is the blocker's.
					if statements++; statements == 2 {
						close(made)
						<-proceed
					}
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			goneDone := make(chan claimOutcome, 1)
			go func() {
				claims, more, err := r.tasks.Claim(ctx, task.ClaimRequest{SessionID: "comb-gone", SessionName: "comb-gone", Types: []string{gone}, Limit: 10, MaxConcurrent: 10})
				goneDone <- claimOutcome{claims, more, err}
			}()
			staysDone := make(chan claimOutcome, 1)
			go func() {
				claims, more, err := r.tasks.Claim(context.Background(), task.ClaimRequest{SessionID: "comb-stays", SessionName: "comb-stays", Types: []string{stays}, Limit: 10, MaxConcurrent: 10})
				staysDone <- claimOutcome{claims, more, err}
			}()
			rig.waitQueued(t, 2)
			if tt.inFlight {
				close(rig.release)
				<-made
				cancel()
			} else {
				cancel()
			}
			out := <-goneDone
			if !errors.Is(out.err, context.Canceled) || len(out.claims) != 0 {
				t.Fatalf("the gone caller's claim = %d claims, %v; want none, context.Canceled", len(out.claims), out.err)
			}
			if tt.inFlight {
				close(proceed)
			} else {
				close(rig.release)
			}
			if st := <-staysDone; st.err != nil || len(st.claims) != 2 {
				t.Fatalf("the other caller's claim = %d claims, %v; want its 2 tasks", len(st.claims), st.err)
			}
			// This claim goes after the put-back, which the combiner makes
			// before its next statement.
			again, _, err := r.tasks.Claim(context.Background(), task.ClaimRequest{SessionID: "comb-next", SessionName: "comb-next", Types: []string{gone}, Limit: 10, MaxConcurrent: 10})
			if err != nil || len(again) != len(goneTasks) {
				t.Fatalf("claim after the caller left = %d claims, %v; want its %d tasks back", len(again), err, len(goneTasks))
			}
			for _, c := range again {
				if c.Token.Attempt != 1 {
					t.Errorf("task %s claimed again at attempt %d; want 1, the gone caller's claim spending none", c.Task.ID, c.Token.Attempt)
				}
			}
		})
	}
}

// TestClaimCombinerManyClaimers: sixteen sessions claiming at once, with
// as many statements in flight as the combiner allows, take every task
// exactly once and none beyond its capacity.
func TestClaimCombinerManyClaimers(t *testing.T) {
	r := openRepositories(t)
	typ := "comb-many-" + uuid.NewString()[:8]
	const sessions, capacity, limit = 16, 30, 7
	want := enqueueOf(t, r, typ, "", 0, 400)
	var mu sync.Mutex
	owner := make(map[string]string)
	var wg sync.WaitGroup
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("comb-many-%d", s)
			held := 0
			for {
				claims, _, err := r.tasks.Claim(context.Background(), task.ClaimRequest{SessionID: id, SessionName: id, Types: []string{typ}, Limit: limit, MaxConcurrent: capacity})
				if err != nil {
					t.Error(err)
					return
				}
				if len(claims) == 0 {
					return
				}
				if held += len(claims); held > capacity {
					t.Errorf("%s holds %d claims, over its capacity %d", id, held, capacity)
				}
				mu.Lock()
				for _, c := range claims {
					if prev, ok := owner[c.Task.ID]; ok {
						t.Errorf("task %s claimed by %s and by %s", c.Task.ID, prev, id)
					}
					owner[c.Task.ID] = id
				}
				mu.Unlock()
				if held == capacity {
					// Settle them, so that the session claims on.
					comps := make([]task.Completion, len(claims))
					for i, c := range claims {
						comps[i] = task.Completion{Token: c.Token}
					}
					held -= len(claims)
					if _, _, err := r.tasks.CompleteMany(context.Background(), id, comps); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(owner) != len(want) {
		t.Fatalf("%d of %d tasks claimed", len(owner), len(want))
	}
}
