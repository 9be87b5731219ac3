package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// panicTestCoordinator is a Coordinator with only what the leader's loops
// and the transition proposer touch before their work, logging to logs.
func panicTestCoordinator() (*Coordinator, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return &Coordinator{log: zap.New(core), now: time.Now, cfg: Config{ApplyTimeout: time.Second}}, logs
}

// TestLeaderLoopSurvivesAPanickingStep: a panic in one of the leader's
// loops (lease judging, lock expiry, session purging) ended the process,
// and under `gaia up` every service with it. The panic is logged with its
// stack and the loop runs its next step.
func TestLeaderLoopSurvivesAPanickingStep(t *testing.T) {
	c, logs := panicTestCoordinator()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var steps atomic.Int32
	c.leaderLoops.Add(1)
	go c.leaderLoop(ctx, "judge-leases", time.Millisecond, func(context.Context, time.Time) {
		if steps.Add(1) == 1 {
			panic("boom")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for steps.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	c.leaderLoops.Wait()
	if n := steps.Load(); n < 3 {
		t.Fatalf("the loop ran %d steps after a panic in its first, want it to go on", n)
	}
	panics := logs.FilterMessage("background job panicked").FilterField(zap.String("job", "judge-leases")).All()
	if len(panics) != 1 {
		t.Fatalf("%d panics logged, want 1", len(panics))
	}
	if stack, ok := panics[0].ContextMap()["stack"].(string); !ok || stack == "" {
		t.Fatalf("the panic was logged without its stack: %v", panics[0].ContextMap())
	}
}

// TestTransitionProposerSurvivesAPanic: the goroutine that commits a
// session's transition had no recovery either. A panic in it is logged, and
// the session may be proposed again (its in-flight mark is cleared).
func TestTransitionProposerSurvivesAPanic(t *testing.T) {
	c, logs := panicTestCoordinator()
	proposed := make(chan struct{}, 1)
	c.testHookPropose = func(string) {
		proposed <- struct{}{}
		panic("boom")
	}
	c.proposeTransition("s1", state.StatusSuspect, time.Time{})
	select {
	case <-proposed:
	case <-time.After(10 * time.Second):
		t.Fatal("no proposal ran")
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, busy := c.proposing.Load("s1"); !busy && logs.FilterMessage("background job panicked").Len() == 1 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("after a panicking proposal: in flight %v, %d panics logged; want cleared and 1",
		func() bool { _, b := c.proposing.Load("s1"); return b }(), logs.FilterMessage("background job panicked").Len())
}
