package background

import (
	"context"
	"sync"

	"go.uber.org/zap"
)

// Jobs are a service's long-running background goroutines, each run under
// Loop. They get a context of their own, not the one Run was given: a
// service drains its gRPC server first and stops its jobs after, so that a
// call being drained still finds the work it waits on.
type Jobs struct {
	ctx  context.Context
	stop context.CancelFunc
	log  *zap.Logger
	opts Options
	wg   sync.WaitGroup
}

// NewJobs returns a set of jobs, none running yet.
func NewJobs(log *zap.Logger, opts Options) *Jobs {
	ctx, stop := context.WithCancel(context.Background())
	return &Jobs{ctx: ctx, stop: stop, log: log, opts: opts}
}

// Go runs f on a goroutine of its own under Loop, named job in the log,
// until Stop. It must not be called after Stop.
func (j *Jobs) Go(job string, f func(context.Context)) {
	j.wg.Go(func() { Loop(j.ctx, j.log, job, j.opts, f) })
}

// Stop ends the jobs' context and waits for every job to return. It may be
// called more than once, and from several goroutines.
func (j *Jobs) Stop() {
	j.stop()
	j.wg.Wait()
}
