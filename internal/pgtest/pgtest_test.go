package pgtest

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// fatalRecorder stands in for a testing.TB so a test can watch pgtest fail
// another "test" without failing itself.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs f as a test body and returns what it failed with, or ""
// if it returned normally.
func fatalMessage(t *testing.T, f func(testing.TB)) string {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rec)
	}()
	<-done
	return rec.msg
}

func TestURLIsThePackageDatabase(t *testing.T) {
	pool := Pool(t, URL(t))
	var name string
	if err := pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "gaia_test_pgtest_") {
		t.Errorf("current_database() = %q, want prefix gaia_test_pgtest_", name)
	}
}

func TestURLWithoutMainFailsTheTest(t *testing.T) {
	saved := packageURL
	packageURL = ""
	defer func() { packageURL = saved }()

	msg := fatalMessage(t, func(tb testing.TB) { URL(tb) })
	if !strings.Contains(msg, "pgtest.Main") {
		t.Errorf("URL without Main failed with %q, want it to mention pgtest.Main", msg)
	}
}

func TestNewDatabaseIsPrivateAndDroppedAfterTheTest(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) {
		pool := Pool(t, NewDatabase(t))
		if err := pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(context.Background(), "CREATE TABLE scratch (id int)"); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		t.Fatal("the subtest did not report its database")
	}
	if name == databaseOf(t, URL(t)) {
		t.Fatalf("NewDatabase returned the package database %q", name)
	}

	var exists bool
	err := Pool(t, URL(t)).QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestUnreachableServerFailsWithAdvice(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := lis.Addr().String()
	lis.Close()

	t.Setenv("GAIA_TEST_DATABASE_URL", "postgres://postgres:s3cret@"+closedAddr+"/postgres")
	saved := connectTimeout
	connectTimeout = 500 * time.Millisecond
	defer func() { connectTimeout = saved }()

	msg := fatalMessage(t, func(tb testing.TB) { NewDatabase(tb) })
	t.Logf("NewDatabase failed with: %s", msg)
	for _, want := range []string{closedAddr, "not reachable", "GAIA_TEST_DATABASE_URL", "pg_ctlcluster"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("failure message %q shows the password", msg)
	}
}

func TestDatabaseNameIsAValidIdentifier(t *testing.T) {
	valid := regexp.MustCompile(`^gaia_test_[a-z0-9_]+$`)
	tests := []struct {
		pkg, test  string
		wantPrefix string
	}{
		{"migrate", "", "gaia_test_migrate_"},
		{"pg", "TestEnsureDatabase/Concurrent-Callers", "gaia_test_pg_testensuredatabase_concurrent_callers_"},
		{"grpcserver", strings.Repeat("TestVeryLongName", 10), "gaia_test_grpcserver_testverylongname"},
		{"Weird Pkg.v2", "", "gaia_test_weird_pkg_v2_"},
	}
	for _, tt := range tests {
		name := databaseName(tt.pkg, tt.test)
		if len(name) > maxIdentifierLen {
			t.Errorf("databaseName(%q, %q) = %q is %d bytes, want <= %d", tt.pkg, tt.test, name, len(name), maxIdentifierLen)
		}
		if !valid.MatchString(name) {
			t.Errorf("databaseName(%q, %q) = %q, want a lowercase identifier", tt.pkg, tt.test, name)
		}
		if !strings.HasPrefix(name, tt.wantPrefix) {
			t.Errorf("databaseName(%q, %q) = %q, want prefix %q", tt.pkg, tt.test, name, tt.wantPrefix)
		}
		if other := databaseName(tt.pkg, tt.test); other == name {
			t.Errorf("databaseName(%q, %q) returned %q twice; want a random suffix", tt.pkg, tt.test, name)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/gaia_test_x?sslmode=disable"},
		{"postgresql://u:p@db", "postgresql://u:p@db/gaia_test_x"},
		{"host=127.0.0.1 user=postgres dbname=postgres", "host=127.0.0.1 user=postgres dbname=postgres dbname=gaia_test_x"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.in, "gaia_test_x")
		if err != nil {
			t.Errorf("withDatabase(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if db := databaseOf(t, got); db != "gaia_test_x" {
			t.Errorf("withDatabase(%q) parses to database %q, want gaia_test_x", tt.in, db)
		}
	}
}

func databaseOf(t *testing.T, connString string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}
