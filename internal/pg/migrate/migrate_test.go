package migrate_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gaia-platform/gaia/internal/pg/migrate"
	"github.com/gaia-platform/gaia/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// threeMigrations each leave a row in runs, so a test can count how often
// each one really ran.
func threeMigrations() fstest.MapFS {
	return fstest.MapFS{
		"0001_init.sql": {Data: []byte(`
			CREATE TABLE runs (version int NOT NULL);
			CREATE TABLE tasks (id bigint PRIMARY KEY);
			INSERT INTO runs VALUES (1);`)},
		"0002_add_queue.sql": {Data: []byte(`
			ALTER TABLE tasks ADD COLUMN queue text NOT NULL DEFAULT '';
			INSERT INTO runs VALUES (2);`)},
		"0003_add_index.sql": {Data: []byte(`
			CREATE INDEX tasks_queue ON tasks (queue);
			INSERT INTO runs VALUES (3);`)},
	}
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return pgtest.Pool(t, pgtest.URL(t))
}

// newSchemaName gives each test its own schema in the package database.
func newSchemaName(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	return fmt.Sprintf("%s_%d", name, time.Now().UnixNano()%1e6)
}

func versions(ms []migrate.Migration) []int {
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

func equalInts(a, b []int) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func runsPerVersion(t *testing.T, pool *pgxpool.Pool, schema string) map[int]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT version, count(*) FROM "+schema+".runs GROUP BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := make(map[int]int)
	for rows.Next() {
		var v, n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		counts[v] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	if err := pool.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestUpAppliesFreshSchemaThenNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema, files := newPool(t), newSchemaName(t), threeMigrations()
	core, logs := observer.New(zapcore.InfoLevel)

	applied, err := migrate.Up(ctx, pool, schema, files, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(versions(applied), []int{1, 2, 3}) {
		t.Errorf("first Up applied %v, want [1 2 3]", versions(applied))
	}
	// Unqualified names in the files must land in the service's schema.
	if !tableExists(t, pool, schema+".tasks") {
		t.Errorf("table %s.tasks does not exist", schema)
	}
	if tableExists(t, pool, "public.tasks") {
		t.Error("a migration created public.tasks; want it in the service's schema")
	}

	entries := logs.FilterMessage("migration applied").AllUntimed()
	if len(entries) != 3 {
		t.Fatalf("logged %d \"migration applied\" entries, want 3", len(entries))
	}
	fields := entries[1].ContextMap()
	if fields["schema"] != schema || fields["version"] != int64(2) || fields["name"] != "add_queue" {
		t.Errorf("second log entry fields = %v, want schema=%s version=2 name=add_queue", fields, schema)
	}
	if _, ok := fields["duration"]; !ok {
		t.Errorf("log entry has no duration field: %v", fields)
	}

	again, err := migrate.Up(ctx, pool, schema, files, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second Up applied %v, want nothing", versions(again))
	}
	for v, n := range runsPerVersion(t, pool, schema) {
		if n != 1 {
			t.Errorf("migration %d ran %d times, want once", v, n)
		}
	}

	status, pending, err := migrate.Status(ctx, pool, schema, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 || len(status) != 3 {
		t.Fatalf("Status = %d applied, %d pending; want 3 and 0", len(status), len(pending))
	}
	loaded, _ := migrate.Load(files)
	for i, a := range status {
		if a.Version != loaded[i].Version || a.Name != loaded[i].Name || a.Checksum != loaded[i].Checksum {
			t.Errorf("Status()[%d] = %+v, want version %d name %s checksum of the file", i, a, loaded[i].Version, loaded[i].Name)
		}
		if time.Since(a.AppliedAt) > time.Hour || a.AppliedAt.IsZero() {
			t.Errorf("Status()[%d].AppliedAt = %v, want about now", i, a.AppliedAt)
		}
	}
}

func TestUpAppliesOnlyNewFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema, files := newPool(t), newSchemaName(t), threeMigrations()
	first := fstest.MapFS{"0001_init.sql": files["0001_init.sql"]}

	if _, err := migrate.Up(ctx, pool, schema, first, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	_, pending, err := migrate.Status(ctx, pool, schema, files)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(versions(pending), []int{2, 3}) {
		t.Errorf("Status pending = %v, want [2 3]", versions(pending))
	}
	applied, err := migrate.Up(ctx, pool, schema, files, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(versions(applied), []int{2, 3}) {
		t.Errorf("Up applied %v, want [2 3]", versions(applied))
	}
}

func TestUpConcurrentReplicasApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	const replicas = 8
	schema, files := newSchemaName(t), threeMigrations()

	// Separate pools, as separate replica processes would have.
	pools := make([]*pgxpool.Pool, replicas)
	for i := range pools {
		pools[i] = newPool(t)
	}

	start := make(chan struct{})
	results := make([][]migrate.Migration, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			<-start
			results[i], errs[i] = migrate.Up(context.Background(), pools[i], schema, files, zap.NewNop())
		})
	}
	close(start)
	wg.Wait()

	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		total += len(results[i])
	}
	if total != 3 {
		t.Errorf("replicas applied %d migrations between them, want 3", total)
	}
	counts := runsPerVersion(t, pools[0], schema)
	for v := 1; v <= 3; v++ {
		if counts[v] != 1 {
			t.Errorf("migration %d ran %d times, want exactly once", v, counts[v])
		}
	}
}

func TestUpWaitsForAReplicaThatHoldsTheLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A database of its own, because the test counts waiting advisory locks.
	dbURL := pgtest.NewDatabase(t)
	pool, schema := pgtest.Pool(t, dbURL), newSchemaName(t)
	replica1, replica2, impatient := pgtest.Pool(t, dbURL), pgtest.Pool(t, dbURL), pgtest.Pool(t, dbURL)
	// The migration blocks on a lock the test holds, so the first Up is
	// provably mid-migration while the second one starts.
	const gate = 917_331
	files := fstest.MapFS{"0001_init.sql": {Data: []byte(fmt.Sprintf(
		"SELECT pg_advisory_xact_lock(%d); CREATE TABLE runs (version int); INSERT INTO runs VALUES (1);", gate))}}

	holder, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", gate); err != nil {
		t.Fatal(err)
	}

	type result struct {
		applied []migrate.Migration
		err     error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() {
		a, err := migrate.Up(ctx, replica1, schema, files, zap.NewNop())
		first <- result{a, err}
	}()
	waitForWaitingLocks(t, pool, 1)
	go func() {
		a, err := migrate.Up(ctx, replica2, schema, files, zap.NewNop())
		second <- result{a, err}
	}()
	// Both now wait: the first on the gate, the second on the migration lock.
	waitForWaitingLocks(t, pool, 2)

	// A replica that gives up while waiting must say why and leave no lock behind.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := migrate.Up(short, impatient, schema, files, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "migration lock") {
		t.Errorf("Up with an expiring context returned %v, want an error about the migration lock", err)
	}

	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1)", gate); err != nil {
		t.Fatal(err)
	}
	r1, r2 := <-first, <-second
	if r1.err != nil || r2.err != nil {
		t.Fatalf("Up errors: %v, %v", r1.err, r2.err)
	}
	if len(r1.applied) != 1 || len(r2.applied) != 0 {
		t.Errorf("first Up applied %v and second %v, want [1] and []", versions(r1.applied), versions(r2.applied))
	}
}

// waitForWaitingLocks polls until n advisory lock requests are waiting.
func waitForWaitingLocks(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting int
		// pg_locks spans the cluster; count only this test's database.
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d advisory locks waiting after 10s, want %d", waiting, n)
		}
		<-tick.C
	}
}

func TestUpRefusesAnEditedMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema, files := newPool(t), newSchemaName(t), threeMigrations()
	if _, err := migrate.Up(ctx, pool, schema, files, zap.NewNop()); err != nil {
		t.Fatal(err)
	}

	files["0002_add_queue.sql"] = &fstest.MapFile{Data: []byte("ALTER TABLE tasks ADD COLUMN queue text; INSERT INTO runs VALUES (2);")}
	files["0004_more.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE more (id int); INSERT INTO runs VALUES (4);")}
	applied, err := migrate.Up(ctx, pool, schema, files, zap.NewNop())
	if err == nil {
		t.Fatal("Up accepted an edited migration")
	}
	for _, want := range []string{"0002_add_queue.sql", "edited", schema} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(applied) != 0 || tableExists(t, pool, schema+".more") {
		t.Error("Up applied a new migration despite the edited one")
	}
}

func TestUpRefusesADatabaseNewerThanTheBinary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema, files := newPool(t), newSchemaName(t), threeMigrations()
	if _, err := migrate.Up(ctx, pool, schema, files, zap.NewNop()); err != nil {
		t.Fatal(err)
	}

	older := fstest.MapFS{"0001_init.sql": files["0001_init.sql"], "0002_add_queue.sql": files["0002_add_queue.sql"]}
	_, err := migrate.Up(ctx, pool, schema, older, zap.NewNop())
	if err == nil {
		t.Fatal("Up accepted a database with a migration the binary does not have")
	}
	for _, want := range []string{"0003_add_index.sql", "newer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestUpRollsBackAFailingMigrationEntirely(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema, files := newPool(t), newSchemaName(t), threeMigrations()
	files["0002_add_queue.sql"] = &fstest.MapFile{Data: []byte(`
		CREATE TABLE half_done (id int);
		INSERT INTO runs VALUES (2);
		SELECT 1/0;`)}

	applied, err := migrate.Up(ctx, pool, schema, files, zap.NewNop())
	if err == nil {
		t.Fatal("Up succeeded despite a failing migration")
	}
	if !strings.Contains(err.Error(), "0002_add_queue.sql") || !strings.Contains(err.Error(), "division by zero") {
		t.Errorf("error %q should name 0002_add_queue.sql and PostgreSQL's reason", err)
	}
	if !equalInts(versions(applied), []int{1}) {
		t.Errorf("Up reported %v applied, want [1]", versions(applied))
	}
	if tableExists(t, pool, schema+".half_done") {
		t.Error("the failing migration's table survived; want it rolled back")
	}
	status, pending, err := migrate.Status(ctx, pool, schema, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(status) != 1 || status[0].Version != 1 {
		t.Errorf("schema_migrations holds %+v, want only version 1", status)
	}
	if !equalInts(versions(pending), []int{2, 3}) {
		t.Errorf("pending = %v, want [2 3]", versions(pending))
	}
	if counts := runsPerVersion(t, pool, schema); counts[2] != 0 || counts[3] != 0 {
		t.Errorf("runs = %v, want migrations 2 and 3 not to have run", counts)
	}

	// Fixing the file (it was never applied, so editing it is fine) lets the
	// rest go through.
	files["0002_add_queue.sql"] = threeMigrations()["0002_add_queue.sql"]
	applied, err = migrate.Up(ctx, pool, schema, files, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(versions(applied), []int{2, 3}) {
		t.Errorf("Up after the fix applied %v, want [2 3]", versions(applied))
	}
}

func TestUpRunsNoTransactionMigrationsOutsideATransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := newPool(t), newSchemaName(t)
	files := fstest.MapFS{
		"0001_init.sql": {Data: []byte("CREATE TABLE tasks (id int, queue text);")},
		// Fails with "cannot run inside a transaction block" if wrapped in one.
		"0002_index.sql": {Data: []byte("-- gaia:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_queue ON tasks (queue);")},
	}
	applied, err := migrate.Up(ctx, pool, schema, files, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(versions(applied), []int{1, 2}) {
		t.Errorf("Up applied %v, want [1 2]", versions(applied))
	}
	if !tableExists(t, pool, schema+".tasks_queue") {
		t.Errorf("index %s.tasks_queue does not exist", schema)
	}
}

func TestUpLeavesTheConnectionsSearchPathAlone(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
	}{
		{"transactional", fstest.MapFS{"0001_init.sql": {Data: []byte("CREATE TABLE t (id int);")}}},
		{"no transaction", fstest.MapFS{"0001_init.sql": {Data: []byte("-- gaia:no-transaction\nCREATE TABLE t (id int);")}}},
		{"failing no transaction", fstest.MapFS{"0001_init.sql": {Data: []byte("-- gaia:no-transaction\nSELECT 1/0;")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			// One connection, so the pool must hand back the very one Up used.
			cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 1
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var before string
			if err := pool.QueryRow(ctx, "SHOW search_path").Scan(&before); err != nil {
				t.Fatal(err)
			}

			_, _ = migrate.Up(ctx, pool, newSchemaName(t), tt.files, zap.NewNop())

			var after string
			if err := pool.QueryRow(ctx, "SHOW search_path").Scan(&after); err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("search_path after Up = %q, want %q", after, before)
			}
		})
	}
}

func TestUpAndStatusRejectBadSchemaNames(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	for _, schema := range []string{"", "TaskQueue", "1tasks", "task-queue", "tasks;drop schema public", `"tasks"`, strings.Repeat("a", 64)} {
		_, err := migrate.Up(context.Background(), pool, schema, threeMigrations(), zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "schema name") {
			t.Errorf("Up(schema %q) error = %v, want a schema name error", schema, err)
		}
		_, _, err = migrate.Status(context.Background(), pool, schema, threeMigrations())
		if err == nil || !strings.Contains(err.Error(), "schema name") {
			t.Errorf("Status(schema %q) error = %v, want a schema name error", schema, err)
		}
	}
}

func TestStatusOfANeverMigratedSchemaChangesNothing(t *testing.T) {
	t.Parallel()
	pool, schema := newPool(t), newSchemaName(t)
	applied, pending, err := migrate.Status(context.Background(), pool, schema, threeMigrations())
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 || !equalInts(versions(pending), []int{1, 2, 3}) {
		t.Errorf("Status = %d applied, pending %v; want none and [1 2 3]", len(applied), versions(pending))
	}
	var exists bool
	if err := pool.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("Status created schema %s", schema)
	}
}

func TestUpRejectsBadFilesBeforeTouchingTheDatabase(t *testing.T) {
	t.Parallel()
	pool, schema := newPool(t), newSchemaName(t)
	_, err := migrate.Up(context.Background(), pool, schema, fstest.MapFS{"init.sql": {Data: []byte("SELECT 1;")}}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "init.sql") {
		t.Fatalf("Up error = %v, want one naming init.sql", err)
	}
	var exists bool
	if err := pool.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("Up created schema %s although its files were bad", schema)
	}
}
