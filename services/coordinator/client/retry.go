package client

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/grpcclient"
)

// Unary retry policy.
const (
	retryMinDelay = 10 * time.Millisecond
	retryMaxDelay = time.Second
	// retryBudgetWithoutDeadline bounds retrying for a call whose context has
	// no deadline. The call itself is not bounded by it: a long lock wait is
	// not cut short.
	retryBudgetWithoutDeadline = 30 * time.Second
)

// retryUnaryInterceptor retries a unary call that failed with UNAVAILABLE, and
// only that code: a node in an election, shutting down or unreachable says
// UNAVAILABLE, and the next attempt may be balanced to another node or find a
// leader elected. Every other code is the server's answer and is returned as
// it is.
//
// UNAVAILABLE can also come after the server acted (a leader that committed a
// write and lost leadership before answering); the retry then gets the answer
// to a repeat, such as ALREADY_EXISTS for a registration.
func retryUnaryInterceptor(logger *zap.Logger) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		giveUpAt, ok := ctx.Deadline()
		if !ok {
			giveUpAt = time.Now().Add(retryBudgetWithoutDeadline)
		}
		bo := backoff{min: retryMinDelay, max: retryMaxDelay}
		for attempt := 1; ; attempt++ {
			var trailer metadata.MD
			// Clip: appending must not write into the caller's array.
			err := invoker(ctx, method, req, reply, cc, append(slices.Clip(opts), grpc.Trailer(&trailer))...)
			if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
				return err
			}
			delay := bo.next()
			if time.Now().Add(delay).After(giveUpAt) {
				return err
			}
			logger.Debug("coordinator unavailable, retrying call",
				zap.String("method", method),
				zap.Int("attempt", attempt),
				zap.Duration("delay", delay),
				zap.Strings("leader_hint", trailer.Get(grpcclient.LeaderTrailer)),
				zap.Error(err))
			if !sleep(ctx, delay, nil) {
				// The last answer says more than "context canceled".
				return err
			}
		}
	}
}

// backoff is exponential backoff with jitter. The zero value is not usable;
// set min and max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// next returns the delay before the next attempt: the current step, jittered
// into [step/2, step], after which the step doubles up to max.
func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// reset starts again from min after progress.
func (b *backoff) reset() { b.cur = 0 }

// sleep waits d and reports true, or reports false as soon as ctx ends or stop
// is closed (stop may be nil).
func sleep(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
