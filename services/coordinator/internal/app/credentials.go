package app

import (
	"context"

	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// ErrNoSigningKey answers IssueCredential on a node started without
// AUTH_SIGNING_KEY_FILE.
var ErrNoSigningKey = domainerr.New(domainerr.FailedPrecondition, "this coordinator has no signing key (AUTH_SIGNING_KEY_FILE) and cannot issue credentials")

// IssueCredential signs a credential on the leader and records it in the
// Raft state; the token is returned once and never stored.
func (c *Coordinator) IssueCredential(ctx context.Context, spec auth.Spec, by auth.Principal) (Credential, string, error) {
	if c.cfg.Signer == nil {
		return Credential{}, "", ErrNoSigningKey
	}
	token, p, err := c.cfg.Signer.Sign(spec)
	if err != nil {
		return Credential{}, "", err
	}
	rec := Credential{
		ID: p.CredentialID, Role: string(p.Role), Name: p.Name, TeacherID: p.TeacherID, AppID: p.AppID,
		Classrooms: p.Classrooms, Projects: p.Projects, Service: p.Service, KeyID: p.KeyID,
		IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt, IssuedBy: by.Who(),
	}
	res, err := c.apply(ctx, fsm.CmdIssueCredential, fsm.IssueCredential{Credential: rec})
	if err != nil {
		return Credential{}, "", err
	}
	r := res.(fsm.CredentialResult)
	if r.Err != nil {
		return Credential{}, "", r.Err
	}
	c.log.Info("credential issued",
		zap.String("credential_id", rec.ID), zap.String("role", rec.Role), zap.String("name", rec.Name),
		zap.String("by", by.Who()), zap.Time("expires_at", rec.ExpiresAt))
	return r.Credential, token, nil
}

// RevokeCredential revokes a recorded credential; every service refuses it
// from its next revocation poll on.
func (c *Coordinator) RevokeCredential(ctx context.Context, id string, by auth.Principal) (Credential, error) {
	if _, ok := c.store.Credential(id); !ok {
		return Credential{}, state.ErrCredentialNotFound
	}
	res, err := c.apply(ctx, fsm.CmdRevokeCredential, fsm.RevokeCredential{At: c.now(), ID: id, By: by.Who()})
	if err != nil {
		return Credential{}, err
	}
	r := res.(fsm.CredentialResult)
	if r.Err != nil {
		return Credential{}, r.Err
	}
	c.log.Info("credential revoked", zap.String("credential_id", id), zap.String("by", by.Who()))
	return r.Credential, nil
}

// Credentials lists every credential record from this node's replica.
func (c *Coordinator) Credentials() []Credential { return c.store.Credentials() }

// Revocations lists the revoked credentials that have not expired, from this
// node's replica, and the index it reflects.
func (c *Coordinator) Revocations() ([]auth.Revoked, uint64) {
	idx := c.store.Index()
	recs := c.store.Revocations(c.now())
	out := make([]auth.Revoked, len(recs))
	for i, r := range recs {
		out[i] = auth.Revoked{ID: r.ID, ExpiresAt: r.ExpiresAt}
	}
	return out, idx
}
