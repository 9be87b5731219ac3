package service

import (
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
)

// rateLimited answers every REST call past its credential's token bucket
// with 429 Too Many Requests and Retry-After, before it reaches a backend.
// A call is counted against its credential, with its role's limits
// (AUTH_<ROLE>_RATE_LIMIT), when the credential verifies (the backends judge
// what it may do), otherwise against the client's address with the general
// limits, so that made-up tokens share one bucket per client rather than
// getting one each. The backends' gRPC servers apply the same limits again
// (RESOURCE_EXHAUSTED), since every gRPC port is reachable on its own.
func rateLimited(next http.Handler, limiter *auth.Limiter, verifier *auth.Verifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		wait := limiter.ReserveRole(limitKey(r, verifier))
		if wait == 0 {
			next.ServeHTTP(w, r)
			return
		}
		secs := max(1, int(math.Ceil(wait.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"code":    8, // RESOURCE_EXHAUSTED, as grpc-gateway's own errors carry it
			"message": "rate limit for this credential exceeded; retry after " + strconv.Itoa(secs) + " s",
			"details": []any{},
		})
	})
}

// limitKey is the bucket a call is counted in: its credential's, under its
// role, or its client address's, under no role (the general limits).
func limitKey(r *http.Request, verifier *auth.Verifier) (auth.Role, string) {
	if verifier != nil {
		if scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "bearer") {
			if p, err := verifier.Verify(strings.TrimSpace(tok)); err == nil {
				return p.Role, "cred:" + p.CredentialID
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "", "ip:" + host
}

// keyReloadInterval is how often the gateway re-reads AUTH_PUBLIC_KEYS_FILE.
const keyReloadInterval = 30 * time.Second
