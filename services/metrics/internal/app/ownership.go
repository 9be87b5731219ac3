package app

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// Errors of a LockClient.
var (
	// ErrLockHeld: another session holds the lock.
	ErrLockHeld = domainerr.New(domainerr.Aborted, "lock held by another session")
	// ErrLockLost: the lock is no longer ours (expired, taken, or our session
	// ended).
	ErrLockLost = domainerr.New(domainerr.FailedPrecondition, "lock lost")
)

// LockClient is what partition ownership needs from the coordinator.
type LockClient interface {
	// Start registers this replica's session and keeps it alive; lost is
	// closed when the coordinator ends the session (its locks are freed).
	Start(ctx context.Context) (lost <-chan struct{}, err error)
	// SessionID is the current session's id.
	SessionID() string
	// Acquire takes a lock without waiting; ErrLockHeld when it is taken.
	Acquire(ctx context.Context, key string, ttl time.Duration) (fencingToken uint64, err error)
	// Renew extends a held lock; ErrLockLost when it is no longer ours.
	Renew(ctx context.Context, key string, fencingToken uint64, ttl time.Duration) error
	// Release lets a held lock go.
	Release(ctx context.Context, key string, fencingToken uint64) error
	// Holders returns the holder session of every lock whose key starts
	// with prefix.
	Holders(ctx context.Context, prefix string) (map[string]string, error)
}

// memberPrefix is where each detector replica holds a lock of its own, so
// that the live replicas can be counted: a replica that dies loses it after
// one lock TTL, exactly when its partitions' locks expire.
const memberPrefix = "metrics/detector-members/"

// OwnershipConfig tunes partition ownership.
type OwnershipConfig struct {
	// LockTTL is DETECTION_LOCK_TTL (default 5 s): how long a partition
	// stays with a replica that stopped renewing it.
	LockTTL time.Duration
}

// Ownership keeps this replica's share of the detector partitions: it holds
// a member lock, counts the live replicas, takes free partitions up to an
// even share (ceil(N / replicas)), hands extra ones back (after a final
// checkpoint) when replicas join, renews what it holds, and tells the
// detector at once when a partition is lost.
type Ownership struct {
	cfg      OwnershipConfig
	locks    LockClient
	detector *Detector
	log      *zap.Logger
	now      func() time.Time

	held   map[int]heldLock
	member heldLock
}

type heldLock struct {
	token   uint64
	renewed time.Time
}

// NewOwnership returns the ownership loop of a detector.
func NewOwnership(cfg OwnershipConfig, locks LockClient, detector *Detector, log *zap.Logger) *Ownership {
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 5 * time.Second
	}
	return &Ownership{cfg: cfg, locks: locks, detector: detector, log: log, now: time.Now, held: map[int]heldLock{}}
}

// cycle is how often ownership looks around: often enough that a dead
// replica's partitions move within the lock TTL plus half a second.
func (o *Ownership) cycle() time.Duration { return min(o.cfg.LockTTL/4, 500*time.Millisecond) }

// Run keeps ownership until ctx ends, then releases every lock (after the
// detector's final checkpoints).
func (o *Ownership) Run(ctx context.Context) {
	for ctx.Err() == nil {
		lost, err := o.locks.Start(ctx)
		if err != nil {
			o.log.Warn("registering the detector's coordinator session failed; retrying", zap.Error(err))
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		o.log.Info("detector session registered", zap.String("session_id", o.locks.SessionID()))
		o.member = heldLock{}
		tick := time.NewTicker(o.cycle())
		for ended := false; !ended; {
			o.step(ctx)
			select {
			case <-ctx.Done():
				ended = true
			case <-lost:
				o.log.Warn("detector session lost; its partitions are gone")
				ended = true
			case <-tick.C:
			}
		}
		tick.Stop()
		o.dropAll(ctx)
	}
}

// dropAll lets every partition go: with a final checkpoint and a release
// when the session is still ours (shutdown), at once otherwise.
func (o *Ownership) dropAll(ctx context.Context) {
	shutdown := ctx.Err() != nil
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for n, h := range o.held {
		if shutdown {
			if err := o.detector.Release(rctx, n); err != nil {
				o.log.Warn("final checkpoint before release failed", zap.Int("partition", n), zap.Error(err))
			}
			_ = o.locks.Release(rctx, detect.LockKey(n), h.token)
		} else {
			o.detector.Lose(n)
		}
		delete(o.held, n)
	}
	if shutdown && o.member.token != 0 {
		_ = o.locks.Release(rctx, memberPrefix+o.locks.SessionID(), o.member.token)
	}
}

func (o *Ownership) step(ctx context.Context) {
	now := o.now()
	ttl := o.cfg.LockTTL
	// Our member lock, then our partitions: renewed a third of a TTL after
	// the last renewal; lost when the coordinator says so, or when no
	// renewal succeeded for a whole TTL (it may have expired meanwhile).
	memberKey := memberPrefix + o.locks.SessionID()
	if o.member.token == 0 {
		if tok, err := o.locks.Acquire(ctx, memberKey, ttl); err == nil {
			o.member = heldLock{token: tok, renewed: now}
		}
	} else if now.Sub(o.member.renewed) >= ttl/3 {
		if err := o.locks.Renew(ctx, memberKey, o.member.token, ttl); err == nil {
			o.member.renewed = now
		} else if errors.Is(err, ErrLockLost) {
			o.member = heldLock{}
		}
	}
	for n, h := range o.held {
		if now.Sub(h.renewed) < ttl/3 {
			continue
		}
		err := o.locks.Renew(ctx, detect.LockKey(n), h.token, ttl)
		switch {
		case err == nil:
			h.renewed = now
			o.held[n] = h
		case errors.Is(err, ErrLockLost) || now.Sub(h.renewed) >= ttl-o.cycle():
			o.log.Warn("detector partition lock lost", zap.Int("partition", n), zap.Error(err))
			o.detector.Lose(n)
			delete(o.held, n)
		}
	}

	holders, err := o.locks.Holders(ctx, "metrics/detector")
	if err != nil {
		o.log.Debug("listing detector locks failed", zap.Error(err))
		return
	}
	members := 0
	for key := range holders {
		if strings.HasPrefix(key, memberPrefix) {
			members++
		}
	}
	members = max(members, 1)
	parts := o.detector.Partitions()
	target := (parts + members - 1) / members

	// Hand back extra partitions (a replica joined): the highest-numbered
	// first, after a final checkpoint, so the next owner replays nothing.
	for len(o.held) > target {
		top := -1
		for n := range o.held {
			top = max(top, n)
		}
		h := o.held[top]
		if err := o.detector.Release(ctx, top); err != nil {
			o.log.Warn("checkpoint before handing a partition back failed", zap.Int("partition", top), zap.Error(err))
		}
		_ = o.locks.Release(ctx, detect.LockKey(top), h.token)
		delete(o.held, top)
		o.log.Info("detector partition handed back", zap.Int("partition", top), zap.Int("replicas", members))
	}
	// Take free partitions up to the share, starting at a place of our own
	// so that replicas starting together do not all race for partition 0.
	start := int(hashString(o.locks.SessionID()) % uint32(parts))
	for i := 0; i < parts && len(o.held) < target; i++ {
		n := (start + i) % parts
		if _, mine := o.held[n]; mine {
			continue
		}
		if _, taken := holders[detect.LockKey(n)]; taken {
			continue
		}
		tok, err := o.locks.Acquire(ctx, detect.LockKey(n), ttl)
		if err != nil {
			continue
		}
		o.held[n] = heldLock{token: tok, renewed: o.now()}
		o.detector.Gain(n, tok)
		o.log.Info("detector partition acquired", zap.Int("partition", n), zap.Uint64("fencing_token", tok), zap.Int("replicas", members))
	}
}

func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
