// Package readiness decides whether the gateway can serve: it asks every
// backend's gRPC health service for its readiness, in parallel and with a
// short deadline.
package readiness

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Checker reports whether every backend is SERVING.
type Checker struct {
	// Backends maps a backend's name to its connection.
	Backends map[string]*grpc.ClientConn
	// Timeout bounds each health check.
	Timeout time.Duration
}

// Report is the outcome of one check.
type Report struct {
	Ready    bool              `json:"ready"`
	Backends map[string]string `json:"backends"`
}

// Check asks every backend once.
func (c *Checker) Check(ctx context.Context) Report {
	rep := Report{Ready: true, Backends: make(map[string]string, len(c.Backends))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	names := make([]string, 0, len(c.Backends))
	for name := range c.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		conn := c.Backends[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, c.Timeout)
			defer cancel()
			state := "SERVING"
			resp, err := checkReadiness(cctx, healthpb.NewHealthClient(conn))
			switch {
			case err != nil:
				state = "UNREACHABLE"
			case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
				state = resp.GetStatus().String()
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Backends[name] = state
			if state != "SERVING" {
				rep.Ready = false
			}
		}()
	}
	wg.Wait()
	return rep
}

// ReadinessService is the health service every GAIA backend keeps SERVING
// only while it can do its work (its dependencies answer); "" says only that
// the process serves gRPC, and was SERVING with no coordinator leader or no
// PostgreSQL behind it.
const ReadinessService = "readiness"

// checkReadiness asks for ReadinessService, and for "" of a backend that does
// not know it (NOT_FOUND: one older than readiness services).
func checkReadiness(ctx context.Context, c healthpb.HealthClient) (*healthpb.HealthCheckResponse, error) {
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: ReadinessService})
	if status.Code(err) == codes.NotFound {
		return c.Check(ctx, &healthpb.HealthCheckRequest{})
	}
	return resp, err
}

// ServeHTTP answers 200 when every backend is SERVING and 503 otherwise, with
// the state of each backend as JSON.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := c.Check(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rep.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rep)
}
