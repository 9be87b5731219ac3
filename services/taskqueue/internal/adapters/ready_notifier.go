package adapters

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// ReadyNotifier wakes claimers waiting for work when PostgreSQL announces,
// on ReadyChannel, that tasks may have become claimable. Bursts of
// notifications are debounced into at most one wake-up per debounce period;
// waiters also poll, so a lost notification only delays them.
type ReadyNotifier struct {
	pool     *pgxpool.Pool
	log      *zap.Logger
	debounce time.Duration

	mu   sync.Mutex
	wake chan struct{}
}

// NewReadyNotifier listens through one connection of pool.
func NewReadyNotifier(pool *pgxpool.Pool, log *zap.Logger) *ReadyNotifier {
	return &ReadyNotifier{pool: pool, log: log, debounce: 2 * time.Millisecond, wake: make(chan struct{})}
}

// Wait returns a channel closed at the next wake-up.
func (n *ReadyNotifier) Wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wake
}

// Wake wakes every current waiter (the service calls it too when a task
// becomes claimable in this process).
func (n *ReadyNotifier) Wake() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.wake)
	n.wake = make(chan struct{})
}

// Run listens until ctx ends, reconnecting after errors.
func (n *ReadyNotifier) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("task notification listener stopped; reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
		// Whatever was announced meanwhile: let waiters look.
		n.Wake()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (n *ReadyNotifier) listen(ctx context.Context) error {
	pooled, err := n.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries a LISTEN: take it out of the pool for good.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+ReadyChannel); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		n.Wake()
		// Debounce: at most one wake-up per period; notifications that
		// arrive meanwhile wait on the connection.
		timer := time.NewTimer(n.debounce)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}
