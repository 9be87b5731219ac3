package auth

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultRevocationPoll is how often services fetch the revocation list. A
// revocation reaches every service within one poll plus Raft replication,
// well inside the 10 s the design promises.
const DefaultRevocationPoll = 2 * time.Second

// Revoked names one revoked credential until it would have expired anyway.
type Revoked struct {
	ID        string
	ExpiresAt time.Time
}

// Revocations is the set of revoked credential ids a Verifier refuses. It is
// replaced as a whole on every poll of the coordinator's list, and may be
// added to directly (a coordinator node reads its own replica).
type Revocations struct {
	mu      sync.RWMutex
	ids     map[string]time.Time
	updated time.Time
}

// NewRevocations is an empty set.
func NewRevocations() *Revocations { return &Revocations{ids: map[string]time.Time{}} }

// Has reports whether id is revoked.
func (r *Revocations) Has(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.ids[id]
	return ok
}

// Replace makes list the whole set.
func (r *Revocations) Replace(list []Revoked) {
	ids := make(map[string]time.Time, len(list))
	for _, x := range list {
		ids[x.ID] = x.ExpiresAt
	}
	r.mu.Lock()
	r.ids = ids
	r.updated = time.Now()
	r.mu.Unlock()
}

// Add revokes one id.
func (r *Revocations) Add(id string, expires time.Time) {
	r.mu.Lock()
	r.ids[id] = expires
	r.mu.Unlock()
}

// Len is the number of revoked ids held.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.ids)
}

// Updated is when the set was last replaced.
func (r *Revocations) Updated() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.updated
}

// Poll replaces the set with fetch's answer every interval until ctx ends,
// starting at once. A failed fetch keeps the last known set (a revocation is
// then late, never forgotten) and is logged, once per run of failures.
func (r *Revocations) Poll(ctx context.Context, interval time.Duration, fetch func(context.Context) ([]Revoked, error), log *zap.Logger) {
	if interval <= 0 {
		interval = DefaultRevocationPoll
	}
	if log == nil {
		log = zap.NewNop()
	}
	failing := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fctx, cancel := context.WithTimeout(ctx, interval+5*time.Second)
		list, err := fetch(fctx)
		cancel()
		switch {
		case err == nil:
			r.Replace(list)
			if failing {
				log.Info("revocation list reachable again", zap.Int("revoked", len(list)))
			}
			failing = false
		case ctx.Err() != nil:
			return
		case !failing:
			log.Warn("cannot fetch the revocation list; keeping the last one", zap.Error(err))
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
