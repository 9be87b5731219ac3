package service_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// pollInterval is how long a waiting claimer trusts notifications alone
// before it looks again by itself (the service's PollInterval).
const pollInterval = 500 * time.Millisecond

// TestWaitingClaimerWokenByNotification: a claimer long-polling on one
// replica receives a task enqueued through another replica of the same
// database far sooner than its own polling would find it. Only PostgreSQL's
// NOTIFY crosses from one replica to the other, so this is the notification
// path end to end; a round through the claimer's own replica (which also
// wakes its waiters directly) is measured alongside.
//
// Each task arrives 600 ms into the wait, just after the claimer's first
// poll found nothing: by polling alone the claimer would see it at its next
// poll, about 400 ms later. The median of three rounds must be well under
// that; every round must at least beat a poll interval plus slack.
func TestWaitingClaimerWokenByNotification(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	other := queuetest.Start(t, e.dbURL, e.coord.Addrs(), queuetest.Options{Quiet: true, Keys: e.coord.Keys})
	ctx := testCtx(t, time.Minute)
	w := e.register(ctx, "waiter", agentOpts{maxTasks: 10})
	// The first claim verifies the session with the coordinator; later ones
	// use the queue's cache, so the wait starts at once.
	if _, err := e.claim(ctx, w, 1, 0); err != nil {
		t.Fatal(err)
	}
	// Both replicas listen before anything is measured.
	eventually(t, 10*time.Second, "both replicas listening", func() (bool, error) {
		var n int
		err := e.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN taskqueue_ready'`).Scan(&n)
		return n == 2, err
	})

	const arriveAfter = 600 * time.Millisecond
	for _, via := range []struct {
		name     string
		rounds   int
		enqueuer taskqueuev1.TaskServiceClient
	}{
		{"another replica (NOTIFY)", 3, other.Tasks()},
		{"the claimer's own replica", 1, e.tasks},
	} {
		var latencies []time.Duration
		for round := range via.rounds {
			type result struct {
				n   int
				err error
				at  time.Time
			}
			got := make(chan result, 1)
			started := time.Now()
			go func() {
				claims, err := e.claim(ctx, w, 1, 30*time.Second)
				got <- result{len(claims), err, time.Now()}
			}()
			// The scenario's timing, not synchronisation: the task must
			// arrive mid-wait. Were the claimer slower to start waiting, it
			// would find the task on its first look and pass more easily.
			select {
			case r := <-got:
				t.Fatalf("claim returned before any task existed: %d claims, %v", r.n, r.err)
			case <-time.After(time.Until(started.Add(arriveAfter))):
			}
			enqueuedAt := time.Now()
			if _, err := via.enqueuer.EnqueueTask(ctx, newTaskReq(fmt.Sprintf("wake-%s-%d", via.name, round), "work", 0, "", round)); err != nil {
				t.Fatal(err)
			}
			r := <-got
			if r.err != nil || r.n != 1 {
				t.Fatalf("%s round %d: %d claims, %v", via.name, round, r.n, r.err)
			}
			latency := r.at.Sub(enqueuedAt)
			latencies = append(latencies, latency)
			if latency > pollInterval+300*time.Millisecond {
				t.Errorf("%s round %d: claimer woke %s after the enqueue, slower than polling", via.name, round, latency)
			}
		}
		slices.Sort(latencies)
		median := latencies[len(latencies)/2]
		t.Logf("via %s: woken %v after the enqueue (polling alone: ~%s)", via.name, latencies, pollInterval-(arriveAfter-pollInterval))
		if median > 250*time.Millisecond {
			t.Errorf("via %s: median wake-up %s after the enqueue; polling alone would take ~400 ms, a notification a few ms", via.name, median)
		}
	}
}
