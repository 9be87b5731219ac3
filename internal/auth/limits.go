package auth

import (
	"fmt"
	"math"
	"strings"
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

// Limits are token-bucket rate limits per credential (per client address
// for session calls and for calls without a credential). They are counted
// in each process: N replicas of a service allow N times the rate.
type Limits struct {
	// Rate is requests per second; 0 takes DefaultRate, < 0 turns limits off.
	Rate float64
	// Burst is the bucket size; 0 takes DefaultBurst.
	Burst int
	// Roles override Rate and Burst for one role (AUTH_<ROLE>_RATE_LIMIT,
	// AUTH_<ROLE>_RATE_BURST): an education app posts from thousands of
	// browsers through one credential, an admin makes a few calls. A role
	// missing here, or a zero field, takes the values above. The session
	// role's limits apply to the client-address buckets of session calls.
	Roles map[Role]RoleLimits
}

// RoleLimits override the general limits for one role.
type RoleLimits struct {
	// Rate is requests per second; 0 takes Limits.Rate, < 0 turns this
	// role's limits off.
	Rate float64
	// Burst is the bucket size; 0 takes Limits.Burst.
	Burst int
}

// Limiter keeps one token bucket per key.
type Limiter struct {
	general tier
	roles   map[Role]tier

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

// tier is the rate and burst one kind of caller gets.
type tier struct {
	rate  rate.Limit
	burst int
	off   bool
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
	general := tier{rate: rate.Limit(l.Rate), burst: l.Burst, off: l.Rate < 0}
	roles := make(map[Role]tier, len(l.Roles))
	for r, rl := range l.Roles {
		t := general
		if rl.Rate != 0 {
			t.rate, t.off = rate.Limit(rl.Rate), rl.Rate < 0
		}
		if rl.Burst > 0 {
			t.burst = rl.Burst
		}
		roles[r] = t
	}
	return &Limiter{general: general, roles: roles, buckets: map[string]*bucket{}, sweep: time.Now()}
}

func (l *Limiter) tierOf(r Role) tier {
	if t, ok := l.roles[r]; ok {
		return t
	}
	return l.general
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

// Allow takes one token from key's bucket with the general limits, or says
// how long to wait.
func (l *Limiter) Allow(key string) error { return l.AllowRole("", key) }

// AllowRole takes one token from key's bucket with role's limits (the
// general ones for a role without overrides, or for ""), or says how long
// to wait.
func (l *Limiter) AllowRole(role Role, key string) error {
	t := l.tierOf(role)
	if t.off {
		return nil
	}
	d := l.reserve(t, role, key)
	if d == 0 {
		return nil
	}
	secs := max(1, int(math.Ceil(d.Seconds())))
	return &RateLimitedError{
		Err:        domainerr.New(domainerr.ResourceExhausted, fmt.Sprintf("rate limit of %g requests/s (burst %d) for %s exceeded; retry after %d s", float64(t.rate), t.burst, describeKey(role, key), secs)),
		RetryAfter: d,
	}
}

// describeKey says in an error whose bucket ran dry.
func describeKey(role Role, key string) string {
	switch {
	case strings.HasPrefix(key, sessionAddrKey):
		return "session calls from this client address"
	case strings.HasPrefix(key, anonAddrKey):
		return "calls without a credential from this client address"
	case role != "":
		return "this " + string(role) + " credential"
	}
	return "this credential"
}

// Reserve takes a token from key's bucket with the general limits when one
// is there (returning 0), otherwise takes none and returns how long until
// one is.
func (l *Limiter) Reserve(key string) time.Duration { return l.ReserveRole("", key) }

// ReserveRole is Reserve with role's limits.
func (l *Limiter) ReserveRole(role Role, key string) time.Duration {
	t := l.tierOf(role)
	if t.off {
		return 0
	}
	return l.reserve(t, role, key)
}

func (l *Limiter) reserve(t tier, role Role, key string) time.Duration {
	now := time.Now()
	// Buckets are per role as well as per key, so that a key never gets a
	// bucket sized for another role.
	k := string(role) + "\x00" + key
	l.mu.Lock()
	b, ok := l.buckets[k]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(t.rate, t.burst)}
		l.buckets[k] = b
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
