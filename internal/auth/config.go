package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/config"
)

// Config is how a service verifies and presents credentials, read from the
// environment by every service (docs/SECURITY.md lists the variables).
type Config struct {
	// Off (GAIA_AUTH=off) lets every call through. Never the default.
	Off bool
	// PublicKeysFile (AUTH_PUBLIC_KEYS_FILE) holds the PEM public keys whose
	// signatures are accepted; re-read at every revocation poll, so a new
	// key is picked up without a restart.
	PublicKeysFile string
	// SigningKeyFile (AUTH_SIGNING_KEY_FILE) is the Ed25519 key the
	// coordinator issues credentials with; other services ignore it.
	SigningKeyFile string
	// TokenFile (AUTH_TOKEN_FILE) holds the credential this process presents
	// when it calls another service (a service credential; an admin one for
	// a coordinator node that joins a cluster).
	TokenFile string
	// RevocationPoll (AUTH_REVOCATION_POLL) is how often the revocation list
	// is fetched.
	RevocationPoll time.Duration
	// Limits (AUTH_RATE_LIMIT requests/s, AUTH_RATE_BURST; a limit of 0
	// turns them off), with per-role overrides AUTH_<ROLE>_RATE_LIMIT and
	// AUTH_<ROLE>_RATE_BURST (LimitedRoles).
	Limits Limits
}

// LoadConfig reads the auth variables; problems are recorded in l.
func LoadConfig(l *config.Loader) Config {
	c := Config{
		Off:            l.Enum("GAIA_AUTH", "on", "on", "off") == "off",
		PublicKeysFile: l.String("AUTH_PUBLIC_KEYS_FILE", ""),
		SigningKeyFile: l.String("AUTH_SIGNING_KEY_FILE", ""),
		TokenFile:      l.String("AUTH_TOKEN_FILE", ""),
		RevocationPoll: l.Duration("AUTH_REVOCATION_POLL", DefaultRevocationPoll, 10*time.Millisecond),
	}
	rateLimit := l.Int("AUTH_RATE_LIMIT", int(DefaultRate), 0, maxRateLimit)
	c.Limits = Limits{Rate: float64(rateLimit), Burst: l.Int("AUTH_RATE_BURST", DefaultBurst, 1, maxRateBurst)}
	if rateLimit == 0 {
		c.Limits.Rate = -1
	}
	for _, r := range LimitedRoles {
		rl, set := loadRoleLimits(l, r)
		if set {
			if c.Limits.Roles == nil {
				c.Limits.Roles = map[Role]RoleLimits{}
			}
			c.Limits.Roles[r] = rl
		}
	}
	return c
}

// Bounds of the rate limit variables.
const (
	maxRateLimit = 1_000_000
	maxRateBurst = 10_000_000
)

// LimitedRoles are the roles with rate limit variables of their own
// (AUTH_<ROLE>_RATE_LIMIT, AUTH_<ROLE>_RATE_BURST). Service credentials are
// not limited in the gRPC servers, so they have none.
var LimitedRoles = []Role{RoleAdmin, RoleOperator, RoleSession, RoleApp, RoleTeacher}

// RoleRateLimitVars names the two variables of one role's limits.
func RoleRateLimitVars(r Role) (limit, burst string) {
	up := strings.ToUpper(string(r))
	return "AUTH_" + up + "_RATE_LIMIT", "AUTH_" + up + "_RATE_BURST"
}

// loadRoleLimits reads one role's overrides; set reports whether either
// variable is set. Unset, each takes the general value (AUTH_RATE_LIMIT,
// AUTH_RATE_BURST); a limit of 0 turns the role's limits off.
func loadRoleLimits(l *config.Loader, r Role) (rl RoleLimits, set bool) {
	limitVar, burstVar := RoleRateLimitVars(r)
	limit := optionalInt(l, limitVar, 0, maxRateLimit, "AUTH_RATE_LIMIT")
	burst := optionalInt(l, burstVar, 1, maxRateBurst, "AUTH_RATE_BURST")
	if limit >= 0 {
		set = true
		rl.Rate = float64(limit)
		if limit == 0 {
			rl.Rate = -1
		}
	}
	if burst >= 0 {
		set = true
		rl.Burst = burst
	}
	return rl, set
}

// optionalInt reads an integer from min to max that may be left unset
// (-1), which shows as taking the variable named by inherits.
func optionalInt(l *config.Loader, name string, lo, hi int, inherits string) int {
	raw := l.Custom(name, "", func(v string) string {
		if v == "" {
			return "(" + inherits + ")"
		}
		return v
	}, func(raw string) (string, string) {
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil || n < lo || n > hi {
			return "", fmt.Sprintf("an integer from %d to %d (unset: the value of %s)", lo, hi, inherits)
		}
		return strconv.Itoa(n), ""
	})
	if raw == "" {
		return -1
	}
	n, _ := strconv.Atoi(raw)
	return n
}

// Runtime is a service's built auth: the authorizer for its gRPC server, the
// credential it presents, and the loops that keep keys and revocations
// fresh.
type Runtime struct {
	cfg        Config
	log        *zap.Logger
	verifier   *Verifier
	authorizer *Authorizer
	token      string
}

// ErrNoKeys stops a service that has no way to verify credentials.
var ErrNoKeys = errors.New("AUTH_PUBLIC_KEYS_FILE is not set: a service needs the public keys to verify credentials " +
	"(gaia up makes them in its data folder; GAIA_AUTH=off turns every check off, for experiments only)")

// NewRuntime reads the keys and the service's own credential. resolver may
// be nil (a service with no teacher-scoped RPCs).
func NewRuntime(cfg Config, resolver ClassroomResolver, log *zap.Logger) (*Runtime, error) {
	if log == nil {
		log = zap.NewNop()
	}
	r := &Runtime{cfg: cfg, log: log}
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("AUTH_TOKEN_FILE: %w", err)
		}
		r.token = strings.TrimSpace(string(b))
	}
	if cfg.Off {
		log.Warn("GAIA_AUTH=off: EVERY CALL IS ALLOWED WITHOUT A CREDENTIAL, cluster membership included. Never run like this outside an experiment.")
		r.authorizer = NewAuthorizer(Options{Off: true, Limits: cfg.Limits, Classrooms: resolver})
		return r, nil
	}
	if cfg.PublicKeysFile == "" {
		return nil, ErrNoKeys
	}
	keys, err := ReadPublicKeys(cfg.PublicKeysFile)
	if err != nil {
		return nil, fmt.Errorf("AUTH_PUBLIC_KEYS_FILE: %w", err)
	}
	r.verifier = NewVerifier(keys, NewRevocations())
	r.authorizer = NewAuthorizer(Options{Verifier: r.verifier, Limits: cfg.Limits, Classrooms: resolver})
	return r, nil
}

// NewRuntimeWith builds a runtime around an existing verifier, for tests and
// for processes (gaia up) that hold the keys in memory already.
func NewRuntimeWith(v *Verifier, token string, limits Limits, resolver ClassroomResolver) *Runtime {
	return &Runtime{
		cfg:        Config{Limits: limits, RevocationPoll: DefaultRevocationPoll},
		log:        zap.NewNop(),
		verifier:   v,
		token:      token,
		authorizer: NewAuthorizer(Options{Verifier: v, Limits: limits, Classrooms: resolver}),
	}
}

// Authorizer is what grpcserver.Options.Auth takes.
func (r *Runtime) Authorizer() *Authorizer { return r.authorizer }

// Verifier checks credentials (nil when auth is off).
func (r *Runtime) Verifier() *Verifier { return r.verifier }

// Token is the credential this process presents to other services.
func (r *Runtime) Token() string { return r.token }

// Run keeps the revocation list (from fetch) and the public keys (from
// AUTH_PUBLIC_KEYS_FILE) fresh until ctx ends.
func (r *Runtime) Run(ctx context.Context, fetch func(context.Context) ([]Revoked, error)) {
	if r.verifier == nil {
		<-ctx.Done()
		return
	}
	r.verifier.Revocations().Poll(ctx, r.cfg.RevocationPoll, func(ctx context.Context) ([]Revoked, error) {
		r.reloadKeys()
		return fetch(ctx)
	}, r.log)
}

func (r *Runtime) reloadKeys() {
	if r.cfg.PublicKeysFile == "" {
		return
	}
	keys, err := ReadPublicKeys(r.cfg.PublicKeysFile)
	if err != nil {
		r.log.Warn("cannot re-read the public keys; keeping the last ones", zap.Error(err))
		return
	}
	r.verifier.SetKeys(keys)
}
