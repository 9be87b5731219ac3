package service

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/auth/authtest"
)

func TestRESTRateLimitPerCredential(t *testing.T) {
	keys := authtest.New(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := rateLimited(ok, auth.NewLimiter(auth.Limits{Rate: 0.25, Burst: 2}), keys.Verifier)
	call := func(token, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "10.0.0.1:5555"
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	a, b := keys.Admin(t), keys.Token(t, auth.Spec{Role: auth.RoleOperator, TTL: time.Hour})
	for i := range 2 {
		if w := call(a, "/v1/tasks"); w.Code != http.StatusOK {
			t.Fatalf("call %d within the burst: %d", i, w.Code)
		}
	}
	w := call(a, "/v1/tasks")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "4" {
		t.Fatalf("past the burst: %d, Retry-After %q; want 429 and 4 (one token every 4 s)", w.Code, w.Header().Get("Retry-After"))
	}
	if w := call(b, "/v1/tasks"); w.Code != http.StatusOK {
		t.Fatalf("another credential from the same address: %d, want its own bucket", w.Code)
	}
	// Made-up tokens are counted against the client's address, together.
	for i := range 2 {
		if w := call("made-up-"+string(rune('a'+i)), "/v1/tasks"); w.Code != http.StatusOK {
			t.Fatalf("unverified call %d: %d", i, w.Code)
		}
	}
	if w := call("made-up-z", "/v1/tasks"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("a third made-up token from the same address: %d, want 429", w.Code)
	}
	// Health and the OpenAPI document are never limited.
	if w := call(a, "/readyz"); w.Code != http.StatusOK {
		t.Fatalf("/readyz: %d", w.Code)
	}
}

// A REST call with a verified credential is counted under its role's
// limits (AUTH_<ROLE>_RATE_LIMIT), as the backends count it: an app posting
// from a whole classroom gets the app limits, not the general ones.
func TestRESTRateLimitUsesTheCredentialsRole(t *testing.T) {
	keys := authtest.New(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	limits := auth.Limits{Rate: 0.25, Burst: 1, Roles: map[auth.Role]auth.RoleLimits{auth.RoleApp: {Rate: 0.25, Burst: 5}}}
	h := rateLimited(ok, auth.NewLimiter(limits), keys.Verifier)
	call := func(token string) int {
		r := httptest.NewRequest(http.MethodPost, "/v1/metrics", nil)
		r.RemoteAddr = "10.0.0.1:5555"
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	app := keys.Token(t, auth.Spec{Role: auth.RoleApp, AppID: "app-1", TTL: time.Hour})
	for i := range 5 {
		if code := call(app); code != http.StatusOK {
			t.Fatalf("app call %d within the app burst of 5: %d", i, code)
		}
	}
	if code := call(app); code != http.StatusTooManyRequests {
		t.Fatalf("app call past its burst: %d, want 429", code)
	}
	admin := keys.Admin(t)
	if code := call(admin); code != http.StatusOK {
		t.Fatalf("first admin call: %d", code)
	}
	if code := call(admin); code != http.StatusTooManyRequests {
		t.Fatalf("second admin call past the general burst of 1: %d, want 429", code)
	}
}
