package auth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/domainerr"
)

func TestSignAndVerifyCarryTheScope(t *testing.T) {
	k := authtest.New(t)
	tok := k.Token(t, auth.Spec{Role: auth.RoleApp, Name: "reader", AppID: "a1", Classrooms: []string{"c1", "c2"}, TTL: time.Hour})
	p, err := k.Verifier.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != auth.RoleApp || p.AppID != "a1" || strings.Join(p.Classrooms, ",") != "c1,c2" || p.Name != "reader" || p.CredentialID == "" || p.KeyID != k.Signer.KeyID() {
		t.Fatalf("principal = %+v", p)
	}
	if time.Until(p.ExpiresAt) > time.Hour || time.Until(p.ExpiresAt) < 50*time.Minute {
		t.Fatalf("expires at %v, want in about an hour", p.ExpiresAt)
	}
}

func TestVerifyRefuses(t *testing.T) {
	k := authtest.New(t)
	other := authtest.New(t)
	good := k.Admin(t)
	revoked, rp, _ := k.Signer.Sign(auth.Spec{Role: auth.RoleAdmin, TTL: time.Hour})
	k.Verifier.Revocations().Add(rp.CredentialID, rp.ExpiresAt)

	// An expired token: signed with a clock two hours back.
	expired := signWith(t, k, jwt.MapClaims{"iss": "gaia", "jti": "x", "role": "admin",
		"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	noExp := signWith(t, k, jwt.MapClaims{"iss": "gaia", "jti": "x", "role": "admin"})
	sessionRole := signWith(t, k, jwt.MapClaims{"iss": "gaia", "jti": "x", "role": "session", "exp": time.Now().Add(time.Hour).Unix()})
	wrongIssuer := signWith(t, k, jwt.MapClaims{"iss": "evil", "jti": "x", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()})

	// "alg": "none" and an HMAC keyed with the public key: the classic JWT
	// algorithm-confusion forgeries.
	none := unsigned(`{"alg":"none","typ":"JWT","kid":"`+k.Signer.KeyID()+`"}`, `{"iss":"gaia","jti":"x","role":"admin","exp":9999999999}`)
	hmac := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "gaia", "jti": "x", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()})
	hmac.Header["kid"] = k.Signer.KeyID()
	hmacTok, err := hmac.SignedString([]byte(k.Signer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	// A valid token whose payload was changed after signing.
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"gaia","jti":"x","role":"admin","exp":9999999999}`)) + "." + parts[2]

	for _, tt := range []struct {
		name  string
		token string
		want  error
	}{
		{"expired", expired, auth.ErrExpired},
		{"no expiry", noExp, auth.ErrBadToken},
		{"revoked", revoked, auth.ErrRevoked},
		{"other key", other.Admin(t), auth.ErrUnknownKey},
		{"alg none", none, auth.ErrBadToken},
		{"hmac with the public key", hmacTok, auth.ErrBadToken},
		{"tampered payload", tampered, auth.ErrBadToken},
		{"session role", sessionRole, auth.ErrBadToken},
		{"wrong issuer", wrongIssuer, auth.ErrBadToken},
		{"garbage", "not.a.token", auth.ErrBadToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.Verifier.Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if domainerr.KindOf(err) != domainerr.Unauthenticated {
				t.Fatalf("kind = %v, want Unauthenticated", domainerr.KindOf(err))
			}
		})
	}
	if _, err := k.Verifier.Verify(good); err != nil {
		t.Fatalf("the good token: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKeys := authtest.New(t)
	newKeys := authtest.New(t)
	oldTok, newTok := oldKeys.Admin(t), newKeys.Admin(t)
	v := auth.NewVerifier(map[string]ed25519.PublicKey{
		oldKeys.Signer.KeyID(): oldKeys.Signer.PublicKey(),
		newKeys.Signer.KeyID(): newKeys.Signer.PublicKey(),
	}, nil)
	for _, tok := range []string{oldTok, newTok} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("during rotation both keys verify: %v", err)
		}
	}
	v.SetKeys(map[string]ed25519.PublicKey{newKeys.Signer.KeyID(): newKeys.Signer.PublicKey()})
	if _, err := v.Verify(oldTok); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("after retiring the old key: %v, want ErrUnknownKey", err)
	}
}

func TestKeyFilesRoundTrip(t *testing.T) {
	k := authtest.New(t)
	priv, err := auth.ReadPrivateKey(k.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if auth.KeyID(priv.Public().(ed25519.PublicKey)) != k.Signer.KeyID() {
		t.Fatal("the signing key read back is another key")
	}
	keys, err := auth.ReadPublicKeys(k.PublicKeysFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys[k.Signer.KeyID()]; !ok || len(keys) != 1 {
		t.Fatalf("public keys = %v", keys)
	}
}

func TestSpecValidateNamesTheField(t *testing.T) {
	for _, tt := range []struct {
		spec  auth.Spec
		field string
	}{
		{auth.Spec{Role: "root"}, "role"},
		{auth.Spec{Role: auth.RoleSession}, "role"},
		{auth.Spec{Role: auth.RoleTeacher}, "teacher_id"},
		{auth.Spec{Role: auth.RoleApp}, "app_id"},
		{auth.Spec{Role: auth.RoleService}, "service"},
		{auth.Spec{Role: auth.RoleAdmin, AppID: "a"}, "app_id"},
		{auth.Spec{Role: auth.RoleTeacher, TeacherID: "t", Classrooms: []string{"c"}}, "classroom_ids"},
		{auth.Spec{Role: auth.RoleApp, AppID: "a", Classrooms: []string{"bad id"}}, "classroom_ids"},
		{auth.Spec{Role: auth.RoleAdmin, Projects: []string{"p"}}, "projects"},
		{auth.Spec{Role: auth.RoleAdmin, TTL: 3 * 365 * 24 * time.Hour}, "ttl"},
	} {
		err := tt.spec.Validate()
		de, ok := errors.AsType[*domainerr.Error](err)
		if !ok || de.Kind != domainerr.InvalidArgument || de.Field != tt.field {
			t.Errorf("Validate(%+v) = %v, want INVALID_ARGUMENT on %s", tt.spec, err, tt.field)
		}
	}
}

func signWith(t *testing.T, k *authtest.Keys, c jwt.MapClaims) string {
	t.Helper()
	priv, err := auth.ReadPrivateKey(k.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = k.Signer.KeyID()
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unsigned(header, payload string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "."
}

// A token is remembered once it verifies; what would refuse it afterwards
// (a revocation, its key retired or replaced) still does.
func TestRememberedTokenIsStillChecked(t *testing.T) {
	k := authtest.New(t)
	tok, p, err := k.Signer.Sign(auth.Spec{Role: auth.RoleApp, Name: "app", AppID: "a1", Classrooms: []string{"c1"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := k.Verifier.Verify(tok)
		if err != nil || got.CredentialID != p.CredentialID || strings.Join(got.Classrooms, ",") != "c1" {
			t.Fatalf("Verify = %+v, %v", got, err)
		}
		got.Classrooms[0] = "changed by the caller"
	}
	k.Verifier.Revocations().Add(p.CredentialID, p.ExpiresAt)
	if _, err := k.Verifier.Verify(tok); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("after revocation: %v, want ErrRevoked", err)
	}

	other := authtest.New(t)
	tok2 := k.Admin(t)
	if _, err := k.Verifier.Verify(tok2); err != nil {
		t.Fatal(err)
	}
	// The same key id now names another key: the signature no longer holds.
	k.Verifier.SetKeys(map[string]ed25519.PublicKey{k.Signer.KeyID(): other.Signer.PublicKey()})
	if _, err := k.Verifier.Verify(tok2); err == nil {
		t.Fatal("a remembered token verified against a replaced key")
	}
}
