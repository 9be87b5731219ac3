package service_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestReapingGoesOnWhileTheCoordinatorIsDown is the regression test for
// reaping that stopped while the coordinator was down: the reaper shared a
// loop with the reconciler, whose lookups of unknown claim holders each
// retried for 30 s, so expired claims were held minutes past their lease.
func TestReapingGoesOnWhileTheCoordinatorIsDown(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{})
	ctx := testCtx(t, 2*time.Minute)
	var ids []string
	for i := range 4 {
		ids = append(ids, e.enqueue(ctx, newTaskReq(keyOf("held", i), "work", 0, "", i)).GetTaskId())
	}
	e.coord.StopAll()

	// Three claims of holders the coordinator would have to be asked about
	// (none is in the queue's view), and one whose lease ends in 6 s.
	for i, id := range ids {
		expires := "now() + interval '1 hour'"
		if i == 0 {
			expires = "now() + interval '6 seconds'"
		}
		if _, err := e.db.Exec(ctx, `UPDATE taskqueue.tasks SET state = 'claimed', attempt = 1, claimed_by_session_id = $2,
			claimed_by_session_name = 'gone', claim_expires_at = `+expires+` WHERE task_id = $1`, id, uuid.NewString()); err != nil {
			t.Fatal(err)
		}
	}
	var leaseEnd time.Time
	if err := e.db.QueryRow(ctx, `SELECT claim_expires_at FROM taskqueue.tasks WHERE task_id = $1`, ids[0]).Scan(&leaseEnd); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Until(leaseEnd)+10*time.Second, "the expired claim reaped with the coordinator down", func() (bool, error) {
		state, _ := e.dbTaskState(ctx, ids[0])
		return state == "pending", nil
	})
	t.Logf("expired claim back %s after its lease ended", time.Since(leaseEnd).Round(time.Millisecond))
	for _, id := range ids[1:] {
		if state, _ := e.dbTaskState(ctx, id); state != "claimed" {
			t.Errorf("task %s with an unexpired claim of an unknown holder is %s while the coordinator is down, want claimed", id, state)
		}
	}
}
