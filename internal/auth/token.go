package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Issuer is the one value in every token's "iss" claim.
const Issuer = "gaia"

// Token lifetimes.
const (
	DefaultTTL = 90 * 24 * time.Hour
	MaxTTL     = 2 * 365 * 24 * time.Hour
	// clockSkew tolerates clocks of different machines disagreeing a little
	// on "exp" and "iat".
	clockSkew = 30 * time.Second
)

// claims is the JWT payload of a GAIA credential.
type claims struct {
	jwt.RegisteredClaims
	Role       Role     `json:"role"`
	Name       string   `json:"name,omitempty"`
	TeacherID  string   `json:"teacher,omitempty"`
	AppID      string   `json:"app,omitempty"`
	Classrooms []string `json:"classrooms,omitempty"`
	Projects   []string `json:"projects,omitempty"`
	Service    string   `json:"service,omitempty"`
}

// Spec describes a credential to issue.
type Spec struct {
	Role       Role
	Name       string
	TeacherID  string
	AppID      string
	Classrooms []string
	Projects   []string
	Service    string
	// TTL is how long it is valid; zero means DefaultTTL.
	TTL time.Duration
	// ID is the credential id; empty makes a new UUID.
	ID string
}

// Validate checks a spec; the error names the field, as INVALID_ARGUMENT.
func (s Spec) Validate() error {
	if !slices.Contains(IssuableRoles, s.Role) {
		return domainerr.Invalid("role", "must be one of admin, operator, app, teacher, service")
	}
	if s.TTL < 0 || s.TTL > MaxTTL {
		return domainerr.Invalid("ttl", "must be between 0 (the default, 90 days) and 2 years")
	}
	need := func(field, value string, role Role) error {
		if value == "" {
			return domainerr.Invalid(field, "must be set for role "+string(role))
		}
		return checkID(field, value)
	}
	forbid := func(field string, set bool) error {
		if set {
			return domainerr.Invalid(field, "does not apply to role "+string(s.Role))
		}
		return nil
	}
	var errs []error
	switch s.Role {
	case RoleTeacher:
		errs = append(errs, need("teacher_id", s.TeacherID, s.Role))
	case RoleApp:
		errs = append(errs, need("app_id", s.AppID, s.Role))
	case RoleService:
		errs = append(errs, need("service", s.Service, s.Role))
	}
	if s.Role != RoleTeacher {
		errs = append(errs, forbid("teacher_id", s.TeacherID != ""))
	}
	if s.Role != RoleApp {
		errs = append(errs, forbid("app_id", s.AppID != ""), forbid("classroom_ids", len(s.Classrooms) > 0))
	}
	if s.Role != RoleOperator {
		errs = append(errs, forbid("projects", len(s.Projects) > 0))
	}
	if s.Role != RoleService {
		errs = append(errs, forbid("service", s.Service != ""))
	}
	for _, c := range s.Classrooms {
		errs = append(errs, checkID("classroom_ids", c))
	}
	for _, p := range s.Projects {
		errs = append(errs, checkID("projects", p))
	}
	if len(s.Name) > 128 {
		errs = append(errs, domainerr.Invalid("name", "must be at most 128 characters"))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkID(field, v string) error {
	if v == "" || len(v) > 128 || strings.ContainsAny(v, " \t\r\n") {
		return domainerr.Invalid(field, "must be 1 to 128 characters without spaces")
	}
	return nil
}

// Signer signs credentials with one Ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
	kid string
	now func() time.Time
}

// NewSigner signs with key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, kid: KeyID(key.Public().(ed25519.PublicKey)), now: time.Now}
}

// KeyID is the id of the signing key.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey is the key verifiers need.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign issues the credential spec describes: its token and the principal the
// token stands for.
func (s *Signer) Sign(spec Spec) (string, Principal, error) {
	return s.SignAt(spec, s.now())
}

// SignAt is Sign with the issuing time given (tests make expired tokens).
func (s *Signer) SignAt(spec Spec, now time.Time) (string, Principal, error) {
	if err := spec.Validate(); err != nil {
		return "", Principal{}, err
	}
	if spec.TTL == 0 {
		spec.TTL = DefaultTTL
	}
	if spec.ID == "" {
		spec.ID = uuid.NewString()
	}
	now = now.UTC().Truncate(time.Second)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   subject(spec),
			ID:        spec.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(spec.TTL)),
		},
		Role:       spec.Role,
		Name:       spec.Name,
		TeacherID:  spec.TeacherID,
		AppID:      spec.AppID,
		Classrooms: spec.Classrooms,
		Projects:   spec.Projects,
		Service:    spec.Service,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", Principal{}, fmt.Errorf("sign credential: %w", err)
	}
	return signed, c.principal(s.kid), nil
}

func subject(s Spec) string {
	switch s.Role {
	case RoleTeacher:
		return "teacher:" + s.TeacherID
	case RoleApp:
		return "app:" + s.AppID
	case RoleService:
		return "service:" + s.Service
	default:
		return string(s.Role) + ":" + s.Name
	}
}

func (c claims) principal(kid string) Principal {
	p := Principal{
		Role:         c.Role,
		CredentialID: c.ID,
		Name:         c.Name,
		KeyID:        kid,
		TeacherID:    c.TeacherID,
		AppID:        c.AppID,
		Classrooms:   c.Classrooms,
		Projects:     c.Projects,
		Service:      c.Service,
	}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.Time
	}
	if c.IssuedAt != nil {
		p.IssuedAt = c.IssuedAt.Time
	}
	return p
}

// The ways a presented credential is refused, all UNAUTHENTICATED.
var (
	ErrNoCredential = domainerr.New(domainerr.Unauthenticated, "this call needs a credential: authorization: Bearer <token> (see `gaia auth issue`)")
	ErrBadToken     = domainerr.New(domainerr.Unauthenticated, "the credential is not a valid GAIA token")
	ErrUnknownKey   = domainerr.New(domainerr.Unauthenticated, "the credential is signed with a key this service does not know")
	ErrExpired      = domainerr.New(domainerr.Unauthenticated, "the credential has expired")
	ErrRevoked      = domainerr.New(domainerr.Unauthenticated, "the credential has been revoked")
)

// Verifier checks credentials offline: the signature against the public key
// its "kid" names, the expiry, and the revocation list.
//
// A token that verified is remembered (up to verifiedCacheSize of them, until
// its expiry), so that a client presenting the same credential on every call
// pays for the signature check once: Ed25519 verification and the JWT's
// decoding cost about as much CPU as the rest of a small request. A
// remembered token is still refused once it is revoked, once its key is no
// longer accepted, and from its expiry on (when the full check, with its
// clock-skew leeway, decides again).
type Verifier struct {
	keys    atomic.Pointer[map[string]ed25519.PublicKey]
	revoked *Revocations
	parser  *jwt.Parser
	now     func() time.Time

	mu       sync.RWMutex
	verified map[string]verifiedToken
}

// verifiedCacheSize bounds the remembered tokens (a few MB at most); when
// full, the cache starts over.
const verifiedCacheSize = 4096

type verifiedToken struct {
	principal Principal
	// key is the public key the signature was checked against.
	key ed25519.PublicKey
}

// NewVerifier accepts tokens signed by any of keys (by key id) and refuses
// those in revoked (which may be nil).
func NewVerifier(keys map[string]ed25519.PublicKey, revoked *Revocations) *Verifier {
	if revoked == nil {
		revoked = NewRevocations()
	}
	v := &Verifier{
		revoked:  revoked,
		now:      time.Now,
		verified: map[string]verifiedToken{},
		// Only EdDSA: a token claiming "none" or an HMAC algorithm keyed with
		// the public key is refused before any signature check.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(clockSkew),
		),
	}
	v.SetKeys(keys)
	return v
}

// SetKeys replaces the accepted keys (a rotation adds the new key first).
func (v *Verifier) SetKeys(keys map[string]ed25519.PublicKey) {
	cp := make(map[string]ed25519.PublicKey, len(keys))
	for k, pub := range keys {
		cp[k] = pub
	}
	v.keys.Store(&cp)
}

// KnowsKey reports whether tokens signed with key id kid are accepted.
func (v *Verifier) KnowsKey(kid string) bool {
	_, ok := (*v.keys.Load())[kid]
	return ok
}

// Revocations is the revocation list this verifier consults.
func (v *Verifier) Revocations() *Revocations { return v.revoked }

// Verify returns the principal a token stands for.
func (v *Verifier) Verify(token string) (Principal, error) {
	if p, ok := v.remembered(token); ok {
		if v.revoked.Has(p.CredentialID) {
			return Principal{}, ErrRevoked
		}
		return p, nil
	}
	var c claims
	var kid string
	var key ed25519.PublicKey
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		pub, ok := (*v.keys.Load())[kid]
		if !ok {
			return nil, ErrUnknownKey
		}
		key = pub
		return pub, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownKey):
		return Principal{}, ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, ErrExpired
	default:
		return Principal{}, ErrBadToken
	}
	if c.ID == "" || !slices.Contains(IssuableRoles, c.Role) {
		return Principal{}, ErrBadToken
	}
	if v.revoked.Has(c.ID) {
		return Principal{}, ErrRevoked
	}
	p := c.principal(kid)
	v.remember(token, p, key)
	return p, nil
}

// remembered returns the principal of a token that verified before, while
// it has not expired and its key is still accepted.
func (v *Verifier) remembered(token string) (Principal, bool) {
	v.mu.RLock()
	t, ok := v.verified[token]
	v.mu.RUnlock()
	if !ok || !v.now().Before(t.principal.ExpiresAt) {
		return Principal{}, false
	}
	if pub, ok := (*v.keys.Load())[t.principal.KeyID]; !ok || !pub.Equal(t.key) {
		return Principal{}, false
	}
	p := t.principal
	// The caller gets its own lists, as a fresh verification gives.
	p.Classrooms, p.Projects = slices.Clone(p.Classrooms), slices.Clone(p.Projects)
	return p, true
}

func (v *Verifier) remember(token string, p Principal, key ed25519.PublicKey) {
	if p.ExpiresAt.IsZero() {
		return
	}
	p.Classrooms, p.Projects = slices.Clone(p.Classrooms), slices.Clone(p.Projects)
	v.mu.Lock()
	if len(v.verified) >= verifiedCacheSize {
		clear(v.verified)
	}
	v.verified[token] = verifiedToken{principal: p, key: key}
	v.mu.Unlock()
}
