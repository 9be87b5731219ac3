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
