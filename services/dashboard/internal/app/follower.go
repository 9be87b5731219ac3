// Package app holds the dashboard's use cases: the follower that turns the
// metrics service's frustration events into alerts, the hub that fans new
// alerts out to live subscriptions, and the teacher-facing operations
// (acting on alerts, assignments, the classroom overview).
package app

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/background"
	"github.com/gaia-platform/gaia/services/dashboard/internal/domain/alert"
)

// FrustrationSource streams frustration events after an id, in id order.
type FrustrationSource interface {
	Watch(ctx context.Context, afterID uint64, fn func(alert.Event) error) error
}

// MaxFollowBatch bounds the events written in one transaction.
const MaxFollowBatch = 500

// Follower turns frustration events into alerts from a durable checkpoint.
// The checkpoint moves in the transaction that stores the alerts, so a
// restart of either service resumes exactly after the last stored event: no
// loss, no duplicate.
type Follower struct {
	src  FrustrationSource
	repo alert.Repository
	hub  *Hub
	log  *zap.Logger
}

// NewFollower returns a follower writing alerts to repo and waking hub.
func NewFollower(src FrustrationSource, repo alert.Repository, hub *Hub, log *zap.Logger) *Follower {
	return &Follower{src: src, repo: repo, hub: hub, log: log}
}

// Run follows until ctx ends, reconnecting with backoff.
func (f *Follower) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		progressed, err := f.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = 100 * time.Millisecond
		}
		f.log.Warn("frustration event watch ended; resuming from the checkpoint", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

var errWatchPanicked = errors.New("watching frustration events panicked")

func (f *Follower) follow(ctx context.Context) (progressed bool, err error) {
	checkpoint, err := f.repo.Checkpoint(ctx)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan alert.Event, 2*MaxFollowBatch)
	watchErr := make(chan error, 1)
	go func() {
		defer close(events)
		// A panic in the watch ends this round of following with an error
		// (the follower's loop starts another) rather than the process.
		var err error
		if background.Safely(f.log, "follower-watch", background.Options{}, func() {
			err = f.src.Watch(ctx, checkpoint, func(e alert.Event) error {
				select {
				case events <- e:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}) {
			err = errWatchPanicked
		}
		watchErr <- err
	}()
	batch := make([]alert.Event, 0, MaxFollowBatch)
	for {
		e, ok := <-events
		if !ok {
			return progressed, <-watchErr
		}
		// Take whatever else is already waiting: one transaction for a burst.
		batch = append(batch[:0], e)
	drain:
		for len(batch) < MaxFollowBatch {
			select {
			case e, ok := <-events:
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		created, err := f.repo.RecordEvents(ctx, batch)
		if err != nil {
			cancel()
			for range events { // let the watcher end
			}
			return progressed, err
		}
		progressed = true
		f.hub.metrics.applied(batch, created, time.Now())
		if len(created) > 0 {
			f.hub.Poke()
		}
	}
}
