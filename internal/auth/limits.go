package auth

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Default per-credential limits (AUTH_RATE_LIMIT, AUTH_RATE_BURST).
const (
	DefaultRate  = 1000.0
	DefaultBurst = 2000
)

// Limits are token-bucket rate limits per credential (per session for
// sessions, per client address for calls without a credential).
type Limits struct {
	// Rate is requests per second; 0 takes DefaultRate, < 0 turns limits off.
	Rate float64
	// Burst is the bucket size; 0 takes DefaultBurst.
	Burst int
}

// Limiter keeps one token bucket per key.
type Limiter struct {
	rate  rate.Limit
	burst int
	off   bool

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// idleBucket is how long an unused bucket is kept; a full bucket forgotten
// is the same as a new one, so this only bounds memory.
const idleBucket = 10 * time.Minute

// NewLimiter builds a limiter for l.
func NewLimiter(l Limits) *Limiter {
	if l.Rate == 0 {
		l.Rate = DefaultRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	return &Limiter{rate: rate.Limit(l.Rate), burst: l.Burst, off: l.Rate < 0, buckets: map[string]*bucket{}, sweep: time.Now()}
}

// RateLimitedError is RESOURCE_EXHAUSTED with when to retry.
type RateLimitedError struct {
	Err        *domainerr.Error
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return e.Err.Error() }
func (e *RateLimitedError) Unwrap() error { return e.Err }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, as the HTTP
// Retry-After header and the gRPC "retry-after" header carry it.
func (e *RateLimitedError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// Allow takes one token from key's bucket, or says how long to wait.
func (l *Limiter) Allow(key string) error {
	if l.off {
		return nil
	}
	d := l.Reserve(key)
	if d == 0 {
		return nil
	}
	secs := max(1, int(math.Ceil(d.Seconds())))
	return &RateLimitedError{
		Err:        domainerr.New(domainerr.ResourceExhausted, fmt.Sprintf("rate limit of %g requests/s (burst %d) for this credential exceeded; retry after %d s", float64(l.rate), l.burst, secs)),
		RetryAfter: d,
	}
}

// Reserve takes a token from key's bucket when one is there (returning 0),
// otherwise takes none and returns how long until one is.
func (l *Limiter) Reserve(key string) time.Duration {
	if l.off {
		return 0
	}
	now := time.Now()
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	if now.Sub(l.sweep) > idleBucket {
		for k, x := range l.buckets {
			if now.Sub(x.last) > idleBucket {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	l.mu.Unlock()
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second
	}
	d := r.DelayFrom(now)
	if d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}
