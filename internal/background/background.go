package background

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// Options tune Loop and Every; the zero value is usable.
type Options struct {
	// OnPanic, when set, is called after a recovered panic with the job's
	// name and what was recovered (to count it, or to fail health).
	OnPanic func(job string, recovered any)
	// MinBackoff and MaxBackoff bound the wait before Loop restarts a job
	// that panicked; it doubles with each panic in a row. Defaults 100 ms
	// and 30 s.
	MinBackoff, MaxBackoff time.Duration
}

func (o Options) backoffs() (time.Duration, time.Duration) {
	lo, hi := o.MinBackoff, o.MaxBackoff
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = max(30*time.Second, lo)
	}
	return lo, hi
}

// Safely runs f and reports whether it panicked; a panic is logged with its
// stack under job and passed to opts.OnPanic, never re-raised.
func Safely(log *zap.Logger, job string, opts Options, f func()) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			log.Error("background job panicked", zap.String("job", job), zap.String("panic", fmt.Sprint(r)), zap.ByteString("stack", debug.Stack()))
			if opts.OnPanic != nil {
				opts.OnPanic(job, r)
			}
		}
	}()
	f()
	return false
}

// Loop runs f until ctx ends or f returns. When f panics, Loop logs it and
// runs f again after a backoff (doubling from MinBackoff to MaxBackoff while
// the panics continue; reset once f has run for MaxBackoff without one).
func Loop(ctx context.Context, log *zap.Logger, job string, opts Options, f func(context.Context)) {
	lo, hi := opts.backoffs()
	wait := lo
	for ctx.Err() == nil {
		started := time.Now()
		if !Safely(log, job, opts, func() { f(ctx) }) {
			return
		}
		if time.Since(started) >= hi {
			wait = lo
		}
		log.Warn("background job restarting after a panic", zap.String("job", job), zap.Duration("backoff", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, hi)
	}
}

// Every runs step at once and then every interval until ctx ends. Each run
// gets a context that ends after timeout (no deadline when timeout is zero),
// so one stuck run cannot hold the job forever; a run that panics is logged
// and the next tick runs as usual. Runs never overlap.
func Every(ctx context.Context, log *zap.Logger, job string, interval, timeout time.Duration, opts Options, step func(context.Context)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		Safely(log, job, opts, func() {
			runCtx, cancel := ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				runCtx, cancel = context.WithTimeout(ctx, timeout)
			}
			defer cancel()
			step(runCtx)
		})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
