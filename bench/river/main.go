// Command river works the task queue benchmark's load through River, the
// PostgreSQL job queue, so that `make bench` can set GAIA's figure beside
// River's measured in the same run on the same PostgreSQL.
//
// It creates a fresh database on the server -db names, lets River's own
// migrator lay out River's schema there, and works -jobs jobs with a River
// client whose workers finish each job at once. It drops the database again
// before it exits. Two modes:
//
//   - stream (the default): the client is started, then -jobs jobs are
//     inserted in batches of -batch from -inserters goroutines; jobs/s is
//     the job count over the time from the first insert to the last
//     completion River reports.
//   - burndown: the jobs are inserted first, the same way, with the client
//     stopped; jobs/s is the job count over the time from the client's
//     Start to the last completion, as `river bench --num-total-jobs` times
//     it.
//
// This is a module of its own (bench/river/go.mod) so that River never
// enters GAIA's go.mod; GAIA's `go test ./...` and `go vet ./...` do not
// descend into it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type options struct {
	jobs, batch, inserters, workers, conns int
	fast                                   bool
	mode                                   string
	serverURL                              string
	timeout                                time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.jobs, "jobs", 50_000, "jobs to insert and work")
	flag.IntVar(&o.batch, "batch", 500, "jobs per InsertMany call (GAIA's benchmark enqueues 500 a call)")
	flag.IntVar(&o.inserters, "inserters", 4, "goroutines inserting at once (GAIA's benchmark has 4 producers)")
	flag.IntVar(&o.workers, "workers", 1_000, "River's MaxWorkers for the queue")
	flag.IntVar(&o.conns, "conns", 20, "the pool's connections (GAIA's service pool has 20)")
	flag.BoolVar(&o.fast, "fast", false, "insert with InsertManyFast (COPY) instead of InsertMany")
	flag.StringVar(&o.mode, "mode", "stream", "stream: insert while the workers run; burndown: insert every job first, then start the workers")
	flag.StringVar(&o.serverURL, "db", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"a database on the PostgreSQL server to use; the benchmark creates its own database there and drops it after")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if o.jobs < 1 || o.batch < 1 || o.inserters < 1 || o.workers < 1 || o.conns < 1 {
		fmt.Fprintln(os.Stderr, "river bench: -jobs, -batch, -inserters, -workers and -conns must be positive")
		os.Exit(2)
	}
	if o.mode != "stream" && o.mode != "burndown" {
		fmt.Fprintln(os.Stderr, "river bench: -mode must be stream or burndown")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "river bench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	dbURL, drop, err := createDatabase(ctx, o.serverURL)
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintf(os.Stderr, "river bench: %v\n", err)
		}
	}()

	poolCfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	poolCfg.MaxConns = int32(o.conns)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quietLogger()})
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river's schema: %w", err)
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[benchArgs]) error { return nil }))
	client, err := river.NewClient(driver, &river.Config{
		// Tuned for throughput as River's own benchmark tunes them: the
		// defaults (100 ms cooldown, 1 s poll) favour a quiet database.
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		Logger:            quietLogger(),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.workers}},
		Workers:           workers,
	})
	if err != nil {
		return err
	}
	// Completions are counted from River's events, which it sends once the
	// completer has written the job's new state, not when Work returns.
	events, unsubscribe := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: o.jobs,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer unsubscribe()
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	}()

	insertErr := make(chan error, 1)
	var began time.Time
	if o.mode == "burndown" {
		// Every job is in the table before the first fetch, as River's own
		// benchmark has them; the clock starts with the client.
		if err := insert(ctx, client, o); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		insertErr = nil
		began = time.Now()
		if err := client.Start(ctx); err != nil {
			return err
		}
	} else {
		if err := client.Start(ctx); err != nil {
			return err
		}
		began = time.Now()
		go func() { insertErr <- insert(ctx, client, o) }()
	}

	var last time.Time
	for done := 0; done < o.jobs; {
		select {
		case err := <-insertErr:
			if err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			insertErr = nil
		case e, ok := <-events:
			if !ok {
				return errors.New("river closed the event channel")
			}
			if e.Kind != river.EventKindJobCompleted {
				return fmt.Errorf("job %d: unexpected event %s", e.Job.ID, e.Kind)
			}
			done++
			last = time.Now()
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs completed in %s: %w", done, o.jobs, o.timeout, ctx.Err())
		}
	}
	elapsed := last.Sub(began)
	insertMode := "InsertMany"
	if o.fast {
		insertMode = "InsertManyFast"
	}
	fmt.Printf("river %s: %d jobs (%s batches of %d from %d inserters, MaxWorkers %d, %d connections) in %.2fs\n",
		o.mode, o.jobs, insertMode, o.batch, o.inserters, o.workers, o.conns, elapsed.Seconds())
	// The line `make bench` reads.
	fmt.Printf("river-%s-jobs/s %.0f\n", o.mode, float64(o.jobs)/elapsed.Seconds())
	return nil
}

type benchArgs struct {
	N int `json:"n"`
}

func (benchArgs) Kind() string { return "bench" }

// insert inserts o.jobs jobs in batches from o.inserters goroutines.
func insert(ctx context.Context, client *river.Client[pgx.Tx], o options) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, o.inserters)
	for i := range o.inserters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				first := int(next.Add(int64(o.batch))) - o.batch
				if first >= o.jobs {
					return
				}
				params := make([]river.InsertManyParams, 0, o.batch)
				for n := first; n < min(first+o.batch, o.jobs); n++ {
					params = append(params, river.InsertManyParams{Args: benchArgs{N: n}})
				}
				var err error
				if o.fast {
					_, err = client.InsertManyFast(ctx, params)
				} else {
					_, err = client.InsertMany(ctx, params)
				}
				if err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// createDatabase creates a fresh database on the server serverURL names and
// returns its URL and a function that drops it.
func createDatabase(ctx context.Context, serverURL string) (string, func() error, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	name := "gaia_bench_river_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redact(serverURL), err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	dbURL, err := withDatabase(serverURL, name)
	if err != nil {
		_ = drop()
		return "", nil, err
	}
	return dbURL, drop, nil
}

// withDatabase points a URL or key=value connection string at database name.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", redact(connString), err)
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	return connString + " dbname=" + name, nil
}

// redact hides a URL's password.
func redact(connString string) string {
	u, err := url.Parse(connString)
	if err != nil || u.User == nil {
		return connString
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// quietLogger passes on River's warnings and errors only.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
