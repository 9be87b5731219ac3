package adapters

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Listen holds one connection LISTENing on channels and calls fn for every
// notification, until ctx ends. After each (re)connection it calls fn with
// an empty channel, since notifications sent while it was away are lost:
// the caller then re-reads what it follows.
func Listen(ctx context.Context, pool *pgxpool.Pool, channels []string, fn func(channel, payload string), log *zap.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, pool, channels, fn)
		if ctx.Err() != nil {
			return
		}
		log.Warn("listen for notifications failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func listenOnce(ctx context.Context, pool *pgxpool.Pool, channels []string, fn func(channel, payload string)) error {
	pooled, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries LISTEN state; it never goes back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, `LISTEN `+ch); err != nil {
			return err
		}
	}
	fn("", "")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Channel, n.Payload)
	}
}
