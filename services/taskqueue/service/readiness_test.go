package service_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gaia-platform/gaia/internal/pgtest"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestReadinessFollowsPostgreSQLAndTheCoordinator: a task queue that could
// reach neither PostgreSQL nor the coordinator answered SERVING, so the
// gateway's /readyz said ready while no call could succeed. Its readiness
// service is NOT_SERVING while either is away and SERVING again once both
// are back; liveness stays SERVING throughout.
func TestReadinessFollowsPostgreSQLAndTheCoordinator(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, 2*time.Minute)
	health := healthpb.NewHealthClient(e.q.Conn())
	status := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return resp.GetStatus()
	}
	waitReadiness := func(want healthpb.HealthCheckResponse_ServingStatus, why string) {
		t.Helper()
		eventually(t, 30*time.Second, "readiness "+want.String()+" "+why, func() (bool, error) {
			return status("readiness") == want, nil
		})
		if got := status("liveness"); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("liveness %s %s, want SERVING", got, why)
		}
	}
	waitReadiness(healthpb.HealthCheckResponse_SERVING, "at start")

	// PostgreSQL goes away: the queue's database takes no connections and
	// those it had are ended.
	u, err := url.Parse(e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	admin := pgtest.Pool(t, pgtest.URL(t))
	allow := func(on bool) {
		t.Helper()
		v := "false"
		if on {
			v = "true"
		}
		if _, err := admin.Exec(context.Background(), `ALTER DATABASE `+pgx.Identifier{dbName}.Sanitize()+` ALLOW_CONNECTIONS `+v); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	t.Cleanup(func() { allow(true) })
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, dbName); err != nil {
		t.Fatal(err)
	}
	waitReadiness(healthpb.HealthCheckResponse_NOT_SERVING, "without PostgreSQL")
	allow(true)
	waitReadiness(healthpb.HealthCheckResponse_SERVING, "with PostgreSQL back")

	// The coordinator stops, then comes back.
	node := e.coord.Nodes[0]
	e.coord.Stop(node)
	waitReadiness(healthpb.HealthCheckResponse_NOT_SERVING, "without the coordinator")
	e.coord.Restart(node)
	waitReadiness(healthpb.HealthCheckResponse_SERVING, "with the coordinator back")
}
