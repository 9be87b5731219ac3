package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/gaia-platform/gaia/internal/pgtest"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/gateway/service"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// TestReadyzFollowsTheTaskQueuesDatabase: /readyz asked each backend for ""
// and so called a task queue without PostgreSQL ready. Now, while the
// queue's database refuses connections, /readyz reports the task queue
// NOT_SERVING (and 503), and SERVING again once it is back.
func TestReadyzFollowsTheTaskQueuesDatabase(t *testing.T) {
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	dbURL := pgtest.NewDatabase(t)
	q := queuetest.Start(t, dbURL, coord.Addrs(), queuetest.Options{Quiet: true, Keys: coord.Keys})
	gw, err := service.New(context.Background(), service.Config{
		ListenAddr:      "127.0.0.1:0",
		ShutdownTimeout: time.Second,
		Backends:        service.Backends{Coordinator: coord.Addrs()[0], TaskQueue: q.Addr, Metrics: "127.0.0.1:1", Dashboard: "127.0.0.1:1"},
	}, zaptest.NewLogger(t).Named("gateway"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	queueState := func() (string, int) {
		resp, err := http.Get("http://" + gw.Addr().String() + "/readyz")
		if err != nil {
			return "", 0
		}
		defer resp.Body.Close()
		var rep struct{ Backends map[string]string }
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		return rep.Backends["taskqueue"], resp.StatusCode
	}
	wait := func(want, why string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, code := queueState()
			if got == want {
				if want != "SERVING" && code != http.StatusServiceUnavailable {
					t.Fatalf("/readyz %d with the task queue %s, want 503", code, got)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz says the task queue is %q %s, want %s", got, why, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("SERVING", "at start")

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	admin := pgtest.Pool(t, pgtest.URL(t))
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(context.Background(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`)
	t.Cleanup(func() { exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`) })
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, strings.TrimPrefix(u.Path, "/"))
	wait("NOT_SERVING", "without its database")
	exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`)
	wait("SERVING", "with its database back")
}
