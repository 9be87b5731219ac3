package pg_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// closedAddr is a loopback address nothing listens on, so connecting to it
// is refused at once.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// withDatabaseName points the package database's URL at another database.
func withDatabaseName(t *testing.T, name string) string {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func dropAfterTest(t *testing.T, name string) {
	t.Cleanup(func() {
		admin := pgtest.Pool(t, pgtest.URL(t))
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
}

func TestConnectReturnsAWorkingPool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	core, logs := observer.New(zapcore.DebugLevel)
	pool, err := pg.Connect(ctx, pgtest.URL(t), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var one int
	if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	if n := logs.FilterMessage("waiting for postgresql").Len(); n != 0 {
		t.Errorf("logged %d waits for a server that was up", n)
	}
}

func TestConnectWaitsThenExplainsAnUnreachableServer(t *testing.T) {
	addr := closedAddr(t)
	core, logs := observer.New(zapcore.InfoLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()

	_, err := pg.Connect(ctx, "postgres://gaia:s3cret@"+addr+"/gaia?sslmode=disable", zap.New(core))
	if err == nil {
		t.Fatal("Connect succeeded against a closed port")
	}
	msg := err.Error()
	for _, want := range []string{"postgresql at " + addr + " is not reachable", "connection refused", "start it or set DATABASE_URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error %q shows the password", msg)
	}

	waits := logs.FilterMessage("waiting for postgresql").AllUntimed()
	if len(waits) < 2 {
		t.Fatalf("logged %d waits in 800ms, want Connect to have retried", len(waits))
	}
	fields := waits[0].ContextMap()
	if fields["addr"] != addr || fields["database"] != "gaia" || fields["attempt"] != int64(1) {
		t.Errorf("first wait logged %v, want addr=%s database=gaia attempt=1", fields, addr)
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()), "s3cret") {
			t.Errorf("log entry %q shows the password: %v", e.Message, e.ContextMap())
		}
	}
}

func TestConnectGivesUpAtOnceWhenWaitingCannotHelp(t *testing.T) {
	tests := []struct {
		name     string
		url      func(t *testing.T) string
		wantText string
	}{
		{"missing database", func(t *testing.T) string { return withDatabaseName(t, "gaia_no_such_database") }, "does not exist"},
		{"unknown user", func(t *testing.T) string {
			u, _ := url.Parse(pgtest.URL(t))
			u.User = url.UserPassword("gaia_no_such_user", "s3cret")
			return u.String()
		}, "gaia_no_such_user"},
		{"unparseable url", func(*testing.T) string { return "postgres://gaia:s3cret@db:notaport/gaia" }, "parse database url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := pg.Connect(ctx, tt.url(t), zap.NewNop())
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Connect took %v; it should not retry this", elapsed)
			}
		})
	}
}

func TestEnsureDatabaseCreatesOnce(t *testing.T) {
	tests := []struct {
		name   string
		dbName string
	}{
		{"plain name", fmt.Sprintf("gaia_ensure_%d", time.Now().UnixNano())},
		// Must be quoted, not spliced into SQL.
		{"name needing quotes", fmt.Sprintf(`Gaia Ensure "%d"; DROP`, time.Now().UnixNano())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dropAfterTest(t, tt.dbName)
			dbURL := withDatabaseName(t, tt.dbName)

			created, err := pg.EnsureDatabase(ctx, dbURL)
			if err != nil || !created {
				t.Fatalf("first EnsureDatabase = %v, %v; want true, nil", created, err)
			}
			created, err = pg.EnsureDatabase(ctx, dbURL)
			if err != nil || created {
				t.Fatalf("second EnsureDatabase = %v, %v; want false, nil", created, err)
			}
			var name string
			if err := pgtest.Pool(t, dbURL).QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
				t.Fatal(err)
			}
			if name != tt.dbName {
				t.Errorf("connected to %q, want %q", name, tt.dbName)
			}
		})
	}
}

func TestEnsureDatabaseToleratesConcurrentCallers(t *testing.T) {
	const callers = 8
	name := fmt.Sprintf("gaia_ensure_race_%d", time.Now().UnixNano())
	dropAfterTest(t, name)
	dbURL := withDatabaseName(t, name)

	start := make(chan struct{})
	created := make([]bool, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			created[i], errs[i] = pg.EnsureDatabase(context.Background(), dbURL)
		})
	}
	close(start)
	wg.Wait()

	creators := 0
	for i := range callers {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers report creating the database, want exactly 1", creators)
	}
}

func TestEnsureDatabaseExplainsAnUnreachableServer(t *testing.T) {
	addr := closedAddr(t)
	_, err := pg.EnsureDatabase(context.Background(), "postgres://gaia:s3cret@"+addr+"/gaia")
	if err == nil {
		t.Fatal("EnsureDatabase succeeded against a closed port")
	}
	if !strings.Contains(err.Error(), "postgresql at "+addr+" is not reachable") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q, want it to say the server is not reachable without the password", err)
	}
}

func TestEnsureDatabaseLeavesTheMaintenanceDatabaseAlone(t *testing.T) {
	created, err := pg.EnsureDatabase(context.Background(), withDatabaseName(t, "postgres"))
	if err != nil || created {
		t.Errorf("EnsureDatabase(postgres) = %v, %v; want false, nil", created, err)
	}
}
