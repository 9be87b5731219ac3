// Package authtest makes signing keys and credentials for tests: a key pair
// in a temporary folder, tokens of any role, and the runtime a service under
// test verifies them with.
package authtest

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
)

// Keys is a test signing key, its public key file and a verifier.
type Keys struct {
	Signer         *auth.Signer
	Verifier       *auth.Verifier
	Dir            string
	PublicKeysFile string
	SigningKeyFile string
}

// New makes a key pair in a temporary folder.
func New(t testing.TB) *Keys {
	t.Helper()
	priv, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := &Keys{Signer: auth.NewSigner(priv), Dir: dir,
		PublicKeysFile: filepath.Join(dir, "public.pem"), SigningKeyFile: filepath.Join(dir, "signing.key")}
	pub, err := auth.EncodePublicKeys(k.Signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := auth.EncodePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.PublicKeysFile, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.SigningKeyFile, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	k.Verifier = auth.NewVerifier(map[string]ed25519.PublicKey{auth.KeyID(k.Signer.PublicKey()): k.Signer.PublicKey()}, nil)
	return k
}

// Token issues a credential.
func (k *Keys) Token(t testing.TB, spec auth.Spec) string {
	t.Helper()
	tok, _, err := k.Signer.Sign(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Admin issues an admin credential.
func (k *Keys) Admin(t testing.TB) string {
	return k.Token(t, auth.Spec{Role: auth.RoleAdmin, Name: "test-admin", TTL: time.Hour})
}

// Expired issues an admin credential that expired an hour ago.
func (k *Keys) Expired(t testing.TB) string {
	t.Helper()
	tok, _, err := k.Signer.SignAt(auth.Spec{Role: auth.RoleAdmin, Name: "expired", TTL: time.Hour}, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Revoked issues an admin credential and revokes it in k.Verifier.
func (k *Keys) Revoked(t testing.TB) string {
	t.Helper()
	tok, p, err := k.Signer.Sign(auth.Spec{Role: auth.RoleAdmin, Name: "revoked", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	k.Verifier.Revocations().Add(p.CredentialID, p.ExpiresAt)
	return tok
}

// Service issues a service credential.
func (k *Keys) Service(t testing.TB, name string) string {
	return k.Token(t, auth.Spec{Role: auth.RoleService, Service: name, TTL: time.Hour})
}

// Config is the auth configuration of a service under test: these keys, the
// given credential as its own, and no rate limits.
func (k *Keys) Config(t testing.TB, token string) auth.Config {
	t.Helper()
	c := auth.Config{PublicKeysFile: k.PublicKeysFile, SigningKeyFile: k.SigningKeyFile, RevocationPoll: auth.DefaultRevocationPoll, Limits: auth.Limits{Rate: -1}}
	if token != "" {
		c.TokenFile = filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(c.TokenFile, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
