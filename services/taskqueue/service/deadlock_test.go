package service_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// Every task settlement bumps its lesson's progress counters in the same
// transaction (a trigger), so any statement touching tasks of several
// lessons takes several lesson row locks. These tests run such statements
// against each other; each names the deadlock it once had.

// TestConcurrentBatchesAcrossLessonsDoNotDeadlock enqueues batches that name
// the same lessons in opposite orders, concurrently. Each inserted task bumps
// its lesson's counters in the same transaction; the queue must take those
// row locks in one order, or two such batches deadlock and one of them fails.
func TestConcurrentBatchesAcrossLessonsDoNotDeadlock(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, 2*time.Minute)
	lessons := make([]string, 4)
	for i := range lessons {
		lessons[i] = e.lesson(ctx, "order", fmt.Sprintf("l%d", i), 0).GetLessonId()
	}
	// Statistics as autovacuum gathers them on a live system: with them the
	// planner keeps the batch's own row order when it joins the lessons in,
	// instead of the order of a sequential scan of the lessons table, which
	// would hide the bug.
	if _, err := e.db.Exec(ctx, `ANALYZE taskqueue.lessons`); err != nil {
		t.Fatal(err)
	}
	const (
		writers = 4
		batches = 40
	)
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				req := &taskqueuev1.EnqueueTasksRequest{}
				for i := range 2 * len(lessons) {
					l := lessons[i%len(lessons)]
					if w%2 == 1 {
						l = lessons[len(lessons)-1-i%len(lessons)]
					}
					req.Tasks = append(req.Tasks, newTaskReq(fmt.Sprintf("w%d-b%d-%d", w, b, i), "order", 0, l, i))
				}
				if _, err := e.tasks.EnqueueTasks(ctx, req); err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		t.Fatalf("%d of %d batches failed:\n%v", len(all), writers*batches, joinErrs(all, 5))
	}
	for _, l := range lessons {
		e.wantLesson(ctx, l, writers*batches*2, 0, 0)
	}
}

// TestCancelDuringLessonPriorityUpdateDoesNotDeadlock cancels a lesson's
// pending tasks while its priority keeps changing. A cancellation locks the
// task, then its lesson (for the progress counters); a priority change
// copies the new priority to the lesson's pending tasks, and must take the
// two in the same order or the two deadlock and one of them fails.
func TestCancelDuringLessonPriorityUpdateDoesNotDeadlock(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, 2*time.Minute)
	l := e.lesson(ctx, "busy", "busy", 0).GetLessonId()
	const n = 200
	req := &taskqueuev1.EnqueueTasksRequest{}
	for i := range n {
		req.Tasks = append(req.Tasks, newTaskReq(keyOf("busy", i), "work", 0, l, i))
	}
	resp, err := e.tasks.EnqueueTasks(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n+1000)
	var cancellers sync.WaitGroup
	for g := range 2 {
		cancellers.Add(1)
		go func() {
			defer cancellers.Done()
			for i := g; i < n; i += 2 {
				if _, err := e.tasks.CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: resp.GetResults()[i].GetTask().GetTaskId()}); err != nil {
					errs <- fmt.Errorf("cancel %d: %w", i, err)
				}
			}
		}()
	}
	cancelled := make(chan struct{})
	go func() { cancellers.Wait(); close(cancelled) }()
	updates := 0
	for done := false; !done; updates++ {
		select {
		case <-cancelled:
			done = true
		default:
		}
		if _, err := e.less.UpdateLesson(ctx, &taskqueuev1.UpdateLessonRequest{LessonId: l, Priority: int32(updates % 10), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"priority"}}}); err != nil {
			errs <- fmt.Errorf("update %d: %w", updates, err)
		}
	}
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		t.Fatalf("%d calls failed (%d priority updates ran):\n%v", len(all), updates, joinErrs(all, 5))
	}
	e.wantLesson(ctx, l, 0, 0, 0)
}

// TestConcurrentBatchCompletionsAcrossLessonsDoNotDeadlock: sessions settle
// claims spread over four lessons of equal priority, some with CompleteTasks
// (their batches in differing lesson orders), some one by one, all at once.
// Each completion bumps its lesson's counters; a batch that took its
// lessons' locks in its own order deadlocked with another, and the single
// completions queued behind them failed with it.
func TestConcurrentBatchCompletionsAcrossLessonsDoNotDeadlock(t *testing.T) {
	const (
		sessions = 8
		perClaim = 40
		rounds   = 4
	)
	e := startLoadEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, 2*time.Minute)
	lessons := make([]string, 4)
	for i := range lessons {
		lessons[i] = e.lesson(ctx, "settle", fmt.Sprintf("l%d", i), 0).GetLessonId()
	}
	for round := range rounds {
		req := &taskqueuev1.EnqueueTasksRequest{}
		for i := round * sessions * perClaim; i < (round+1)*sessions*perClaim; i++ {
			req.Tasks = append(req.Tasks, newTaskReq(keyOf("settle", i), "work", 0, lessons[i%len(lessons)], i))
		}
		if _, err := e.tasks.EnqueueTasks(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	agents := make([]*agent, sessions)
	for i := range agents {
		agents[i] = e.register(ctx, fmt.Sprintf("settler-%d", i), agentOpts{maxTasks: perClaim})
	}
	for round := range rounds {
		claims := make([][]*taskqueuev1.Claim, sessions)
		for i, a := range agents {
			claims[i] = e.mustClaim(ctx, a, perClaim)
		}
		errs := make(chan error, sessions*perClaim)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, a := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cs := claims[i]
				<-start
				if i%4 == 3 {
					for _, c := range cs {
						if _, err := e.complete(ctx, a, c); err != nil {
							errs <- fmt.Errorf("round %d session %d: complete: %w", round, i, err)
						}
					}
					return
				}
				// Each batch meets the lessons in an order of its own.
				slices.SortFunc(cs, func(x, y *taskqueuev1.Claim) int {
					return strings.Compare(rotate(x.GetTask().GetLessonId(), i), rotate(y.GetTask().GetLessonId(), i))
				})
				results, err := completeBatch(ctx, e, a, cs)
				if err != nil {
					errs <- fmt.Errorf("round %d session %d: complete %d: %w", round, i, len(cs), err)
					return
				}
				for j, r := range results {
					if r.GetCode() != 0 {
						errs <- fmt.Errorf("round %d session %d: claim %d: %d %s", round, i, j, r.GetCode(), r.GetMessage())
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		if len(all) > 0 {
			t.Fatalf("%d completions failed:\n%v", len(all), joinErrs(all, 5))
		}
	}
	for _, l := range lessons {
		n := int64(sessions * perClaim * rounds / len(lessons))
		e.wantLesson(ctx, l, n, n, 0)
	}
	var deadlocks int64
	if err := e.db.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&deadlocks); err != nil || deadlocks != 0 {
		t.Fatalf("%d deadlocks in the database (%v)", deadlocks, err)
	}
}

// rotate reorders strings differently for each n, so that sorting by it
// gives each n its own order.
func rotate(s string, n int) string {
	if s == "" {
		return s
	}
	k := n % len(s)
	return s[k:] + s[:k]
}
