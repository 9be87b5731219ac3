package adapters

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// FrustrationNotifier LISTENs for committed frustration events on one
// connection and wakes every watch of this replica. A watch also polls, so
// a lost connection only costs latency until it is back.
type FrustrationNotifier struct {
	pool *pgxpool.Pool
	log  *zap.Logger

	mu      sync.Mutex
	changed chan struct{}
}

// NewFrustrationNotifier returns the notifier; Run listens.
func NewFrustrationNotifier(pool *pgxpool.Pool, log *zap.Logger) *FrustrationNotifier {
	return &FrustrationNotifier{pool: pool, log: log, changed: make(chan struct{})}
}

// Changed returns a channel closed at the next notification.
func (n *FrustrationNotifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// Broadcast wakes every waiter now.
func (n *FrustrationNotifier) Broadcast() {
	n.mu.Lock()
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// Run listens until ctx ends, reconnecting after failures.
func (n *FrustrationNotifier) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := n.listen(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("listening for frustration events failed; reconnecting", zap.Error(err))
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

func (n *FrustrationNotifier) listen(ctx context.Context) error {
	conn, err := n.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+FrustrationNotifyChannel); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it.
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, "UNLISTEN *")
	}()
	n.Broadcast() // anything committed while we were not listening
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		n.Broadcast()
	}
}
