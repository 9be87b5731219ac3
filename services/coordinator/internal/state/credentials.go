package state

import (
	"sort"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Credential is the record of an issued credential: what it allows and
// whether it is revoked. The token itself is never stored.
type Credential struct {
	ID         string    `json:"id"`
	Role       string    `json:"role"`
	Name       string    `json:"name,omitempty"`
	TeacherID  string    `json:"teacher_id,omitempty"`
	AppID      string    `json:"app_id,omitempty"`
	Classrooms []string  `json:"classrooms,omitempty"`
	Projects   []string  `json:"projects,omitempty"`
	Service    string    `json:"service,omitempty"`
	KeyID      string    `json:"key_id,omitempty"`
	IssuedAt   time.Time `json:"issued_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IssuedBy   string    `json:"issued_by,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	RevokedBy  string    `json:"revoked_by,omitempty"`
}

// Revoked reports whether the credential has been revoked.
func (c Credential) Revoked() bool { return !c.RevokedAt.IsZero() }

// ErrCredentialNotFound answers a revocation of an unknown credential.
var ErrCredentialNotFound = domainerr.New(domainerr.NotFound, "credential not found")

// ApplyIssueCredential records an issued credential.
func (s *Store) ApplyIssueCredential(c Credential) Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.credentials[c.ID]; ok {
		return *old
	}
	s.credentials[c.ID] = &c
	return c
}

// ApplyRevokeCredential revokes a credential at the leader's time at;
// revoking it again changes nothing. An id never recorded (a credential made
// with the signing key outside the coordinator) is recorded as revoked until
// expires, so that it is refused all the same.
func (s *Store) ApplyRevokeCredential(at time.Time, id, by string, expires time.Time) (Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.credentials[id]
	if !ok {
		if expires.IsZero() {
			return Credential{}, ErrCredentialNotFound
		}
		c = &Credential{ID: id, Role: "unknown", ExpiresAt: expires}
		s.credentials[id] = c
	}
	if !c.Revoked() {
		c.RevokedAt = at
		c.RevokedBy = by
	}
	return *c, nil
}

// Credential returns one credential record.
func (s *Store) Credential(id string) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.credentials[id]; ok {
		return *c, true
	}
	return Credential{}, false
}

// Credentials returns every credential record, oldest first.
func (s *Store) Credentials() []Credential {
	s.mu.RLock()
	out := make([]Credential, 0, len(s.credentials))
	for _, c := range s.credentials {
		out = append(out, *c)
	}
	s.mu.RUnlock()
	sortCredentials(out)
	return out
}

// Revocations returns the revoked credentials that have not expired by now.
func (s *Store) Revocations(now time.Time) []Credential {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Credential
	for _, c := range s.credentials {
		if c.Revoked() && c.ExpiresAt.After(now) {
			out = append(out, *c)
		}
	}
	sortCredentials(out)
	return out
}

func sortCredentials(cs []Credential) {
	sort.Slice(cs, func(i, j int) bool {
		if !cs[i].IssuedAt.Equal(cs[j].IssuedAt) {
			return cs[i].IssuedAt.Before(cs[j].IssuedAt)
		}
		return cs[i].ID < cs[j].ID
	})
}
