package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/pg"
)

// defaultAdminURL is the server a developer machine and CI run.
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// connectTimeout bounds how long a test waits for a server that is starting.
// A variable only so this package's own tests can fail fast.
var connectTimeout = 10 * time.Second

// maxIdentifierLen is PostgreSQL's NAMEDATALEN-1; longer names are silently
// truncated by the server, which would make two databases collide.
const maxIdentifierLen = 63

const howToStart = "set GAIA_TEST_DATABASE_URL to a server the tests may create databases on, " +
	"or start the local one (pg_ctlcluster --skip-systemctl-redirect 15 main start)"

// packageURL is set by Main for the life of the test binary.
var packageURL string

// Main creates the package's database, runs the tests and drops it again,
// then exits with the tests' code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	admin, err := connectAdmin(ctx)
	if err == nil {
		packageURL, err = createDatabase(ctx, admin, databaseName(packageName(), ""))
		admin.Close()
	}
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}

	code := m.Run()

	ctx, cancel = context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := dropDatabase(ctx, packageURL); err != nil {
		// The tests' verdict stands; a leftover database is only clutter.
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	return code
}

// URL is the package database created by Main.
func URL(t testing.TB) string {
	t.Helper()
	if packageURL == "" {
		t.Fatal("pgtest.URL needs the package's TestMain to call pgtest.Main: func TestMain(m *testing.M) { pgtest.Main(m) }")
	}
	return packageURL
}

// NewDatabase creates an empty database for this test alone and drops it
// when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	admin, err := connectAdmin(ctx)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	dbURL, err := createDatabase(ctx, admin, databaseName(packageName(), t.Name()))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		if err := dropDatabase(ctx, dbURL); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dbURL
}

// Pool opens a pool on url, checks it can reach the server, and closes it
// when the test ends.
func Pool(t testing.TB, dbURL string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	pool, err := pg.Connect(ctx, dbURL, zap.NewNop())
	if err != nil {
		t.Fatalf("pgtest: %v (%s)", err, howToStart)
	}
	t.Cleanup(pool.Close)
	return pool
}

func adminURL() string {
	for _, name := range []string{"GAIA_TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" {
			return v
		}
	}
	return defaultAdminURL
}

func connectAdmin(ctx context.Context) (*pgxpool.Pool, error) {
	admin, err := pg.Connect(ctx, adminURL(), zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, howToStart)
	}
	return admin, nil
}

func createDatabase(ctx context.Context, admin *pgxpool.Pool, name string) (string, error) {
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create test database %s on %s: %w", name, pg.Redact(adminURL()), err)
	}
	return withDatabase(adminURL(), name)
}

// dropDatabase drops the database dbURL names, through the admin connection
// because a database cannot be dropped while connected to it. FORCE ends
// connections a test leaked, which would otherwise block the drop.
func dropDatabase(ctx context.Context, dbURL string) error {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("parse test database url: %w", err)
	}
	admin, err := connectAdmin(ctx)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{cfg.Database}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop test database %s: %w", cfg.Database, err)
	}
	return nil
}

// withDatabase returns connString pointed at database name, in whichever of
// the URL and key=value forms it was written.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("parse admin database url %s: %w", pg.Redact(connString), err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In the key=value form a later key overrides an earlier one.
	return connString + " dbname=" + name, nil
}

// packageName is the test binary's package, from the name go test gives the
// binary (pg.test, migrate.test).
func packageName() string {
	return strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
}

// databaseName builds gaia_test_<pkg>[_<test>]_<random>: recognisable when a
// run leaks one, unique across parallel runs, and a valid identifier that
// never needs quoting.
func databaseName(pkg, test string) string {
	suffix := "_" + randomHex(4)
	name := "gaia_test_" + sanitize(pkg)
	if test != "" {
		name += "_" + sanitize(test)
	}
	if len(name) > maxIdentifierLen-len(suffix) {
		name = name[:maxIdentifierLen-len(suffix)]
	}
	return name + suffix
}

// sanitize lowercases s and replaces everything outside [a-z0-9_] with '_',
// so test names like TestX/sub_case-2 fit in an identifier.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b)
}
