package service_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestConcurrentDuplicateEnqueuesCreateOneTask races 32 goroutines, mixing
// EnqueueTask and EnqueueTasks (some batches naming the key twice), on one
// idempotency key, for several keys in a row: each key ends as one task and
// exactly one of all the answers about it says duplicate=false.
func TestConcurrentDuplicateEnqueuesCreateOneTask(t *testing.T) {
	const (
		racers = 32
		rounds = 10
	)
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	lesson := e.lesson(ctx, "dup", "dup", 0).GetLessonId()

	for round := range rounds {
		key := fmt.Sprintf("shared-%d", round)
		var (
			mu      sync.Mutex
			answers []*taskqueuev1.EnqueueTaskResponse
			errs    []error
			wg      sync.WaitGroup
		)
		startLine := make(chan struct{})
		for g := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := newTaskReq(key, "dup", 1, lesson, round)
				<-startLine
				var got []*taskqueuev1.EnqueueTaskResponse
				var err error
				switch g % 3 {
				case 0:
					var r *taskqueuev1.EnqueueTaskResponse
					if r, err = e.tasks.EnqueueTask(ctx, req); err == nil {
						got = append(got, r)
					}
				case 1:
					// The key among fresh ones of this goroutine.
					own := newTaskReq(fmt.Sprintf("own-%d-%d", round, g), "dup", 1, lesson, round)
					var r *taskqueuev1.EnqueueTasksResponse
					if r, err = e.tasks.EnqueueTasks(ctx, &taskqueuev1.EnqueueTasksRequest{Tasks: []*taskqueuev1.EnqueueTaskRequest{own, req}}); err == nil {
						if r.GetResults()[0].GetDuplicate() {
							err = fmt.Errorf("fresh key %s reported duplicate", own.GetIdempotencyKey())
						}
						got = append(got, r.GetResults()[1])
					}
				case 2:
					// The key twice in one batch.
					var r *taskqueuev1.EnqueueTasksResponse
					if r, err = e.tasks.EnqueueTasks(ctx, &taskqueuev1.EnqueueTasksRequest{Tasks: []*taskqueuev1.EnqueueTaskRequest{req, req}}); err == nil {
						got = append(got, r.GetResults()...)
					}
				}
				mu.Lock()
				answers = append(answers, got...)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}()
		}
		close(startLine)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("round %d: %v", round, joinErrs(errs, 5))
		}
		fresh := 0
		id := answers[0].GetTask().GetTaskId()
		for _, a := range answers {
			if !a.GetDuplicate() {
				fresh++
			}
			if a.GetTask().GetTaskId() != id || a.GetTask().GetIdempotencyKey() != key {
				t.Fatalf("round %d: answers name tasks %s and %s (key %s)", round, id, a.GetTask().GetTaskId(), a.GetTask().GetIdempotencyKey())
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d of %d answers say duplicate=false, want exactly 1", round, fresh, len(answers))
		}
		var n int
		if err := e.db.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks WHERE idempotency_key = $1`, key).Scan(&n); err != nil || n != 1 {
			t.Fatalf("round %d: %d tasks with key %s (%v)", round, n, key, err)
		}
	}
	// One task per shared key and one per goroutine of the second kind; the
	// lesson counted each once.
	ownPerRound := 0
	for g := range racers {
		if g%3 == 1 {
			ownPerRound++
		}
	}
	want := int64(rounds * (1 + ownPerRound))
	var n int64
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM taskqueue.tasks`).Scan(&n); err != nil || n != want {
		t.Fatalf("%d tasks in all, want %d (%v)", n, want, err)
	}
	e.wantLesson(ctx, lesson, want, 0, 0)

	// A key given twice in one batch, with different contents: the first
	// one is the task, the second a duplicate of it (though the second's
	// lesson would come first in the order the queue inserts a batch).
	first, second := newTaskReq("twice", "dup", 7, "", 1), newTaskReq("twice", "dup", 1, lesson, 2)
	resp, err := e.tasks.EnqueueTasks(ctx, &taskqueuev1.EnqueueTasksRequest{Tasks: []*taskqueuev1.EnqueueTaskRequest{first, second}})
	if err != nil {
		t.Fatal(err)
	}
	r0, r1 := resp.GetResults()[0], resp.GetResults()[1]
	if r0.GetDuplicate() || !r1.GetDuplicate() || r0.GetTask().GetTaskId() != r1.GetTask().GetTaskId() ||
		r0.GetTask().GetPriority() != 7 || r1.GetTask().GetLessonId() != "" {
		t.Fatalf("a key twice in a batch: %+v / %+v", r0, r1)
	}
}
