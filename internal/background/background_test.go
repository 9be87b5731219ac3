package background_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gaia-platform/gaia/internal/background"
)

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return zap.New(core), logs
}

// A panicking job used to end the whole process (`gaia up` runs every
// service in one): Loop must log it and run the job again.
func TestLoopRestartsAJobThatPanicked(t *testing.T) {
	log, logs := observed()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var runs, hooked atomic.Int32
	opts := background.Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		OnPanic: func(job string, r any) {
			if job == "reaper" && r == "boom" {
				hooked.Add(1)
			}
		}}
	background.Loop(ctx, log, "reaper", opts, func(context.Context) {
		if runs.Add(1) < 3 {
			panic("boom")
		}
	})
	if runs.Load() != 3 {
		t.Fatalf("job ran %d times, want 3 (two panics, then a clean return)", runs.Load())
	}
	if hooked.Load() != 2 {
		t.Fatalf("OnPanic called %d times, want 2", hooked.Load())
	}
	if n := logs.FilterMessage("background job panicked").FilterField(zap.String("job", "reaper")).Len(); n != 2 {
		t.Fatalf("%d panics logged, want 2", n)
	}
}

func TestLoopStopsWhenTheContextEndsDuringBackoff(t *testing.T) {
	log, _ := observed()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runs atomic.Int32
	go func() {
		defer close(done)
		background.Loop(ctx, log, "job", background.Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, func(context.Context) {
			runs.Add(1)
			panic("boom")
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for runs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Loop did not return after its context ended")
	}
	if runs.Load() != 1 {
		t.Fatalf("job ran %d times during an hour's backoff, want 1", runs.Load())
	}
}

// A panicking step must not stop the ticks after it.
func TestEveryKeepsTickingAfterAStepPanicked(t *testing.T) {
	log, logs := observed()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var runs atomic.Int32
	background.Every(ctx, log, "pruner", time.Millisecond, 0, background.Options{}, func(context.Context) {
		if runs.Add(1) == 3 {
			cancel()
		}
		panic("boom")
	})
	if runs.Load() != 3 {
		t.Fatalf("step ran %d times, want 3", runs.Load())
	}
	if logs.FilterMessage("background job panicked").Len() != 3 {
		t.Fatalf("panics logged: %d, want 3", logs.FilterMessage("background job panicked").Len())
	}
}

// Each run has its own deadline, so one stuck step cannot hold its job.
func TestEveryGivesEachRunItsOwnDeadline(t *testing.T) {
	log, _ := observed()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var runs atomic.Int32
	background.Every(ctx, log, "reconciler", time.Millisecond, 20*time.Millisecond, background.Options{}, func(run context.Context) {
		if _, ok := run.Deadline(); !ok {
			t.Error("a run had no deadline")
		}
		<-run.Done() // stuck until its own deadline
		if ctx.Err() != nil {
			t.Error("the run's context ended only with the job's")
		}
		if runs.Add(1) == 2 {
			cancel()
		}
	})
	if runs.Load() != 2 {
		t.Fatalf("step ran %d times, want 2", runs.Load())
	}
}

// Stop ends every job's context and returns only once they have all
// returned, the one that panicked first included; a second Stop is harmless.
func TestJobsStopWaitsForEveryJob(t *testing.T) {
	log, _ := observed()
	jobs := background.NewJobs(log, background.Options{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	var ended, runs atomic.Int32
	for range 3 {
		jobs.Go("wait", func(ctx context.Context) {
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond)
			ended.Add(1)
		})
	}
	jobs.Go("panics-once", func(ctx context.Context) {
		if runs.Add(1) == 1 {
			panic("boom")
		}
		<-ctx.Done()
		ended.Add(1)
	})
	for runs.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	jobs.Stop()
	if n := ended.Load(); n != 4 {
		t.Fatalf("%d jobs had returned when Stop did, want 4", n)
	}
	jobs.Stop()
}
