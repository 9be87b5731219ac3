package adapters

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// Storage modes of the events table (metrics.event_storage).
const (
	StorageNative      = "native"
	StorageTimescaleDB = "timescaledb"
)

// StorageMode says how the migration built the events table.
func StorageMode(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var mode string
	err := pool.QueryRow(ctx, `SELECT mode FROM metrics.event_storage`).Scan(&mode)
	return mode, err
}

// SetTimescaleRetention installs (or replaces) the hypertable's retention
// policy, whose length is configuration rather than migration. The
// extension's functions are called by their schema's name.
func SetTimescaleRetention(ctx context.Context, pool *pgxpool.Pool, retention time.Duration) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var schema string
		if err := tx.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
			WHERE e.extname = 'timescaledb'`).Scan(&schema); err != nil {
			return fmt.Errorf("find the timescaledb extension: %w", err)
		}
		ts := pgx.Identifier{schema}.Sanitize()
		if _, err := tx.Exec(ctx, `SELECT `+ts+`.remove_retention_policy('metrics.usability_events', if_exists => true)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT `+ts+`.add_retention_policy('metrics.usability_events', drop_after => make_interval(secs => $1))`, retention.Seconds())
		return err
	})
}

// partitionLockKey serialises partition DDL across replicas
// (pg_advisory_xact_lock; an arbitrary constant: "gaia metrics partitions").
const partitionLockKey = 0x6761_6961_6d70_6172

var partitionNameRE = regexp.MustCompile(`^usability_events_p(\d{8})$`)

// PartitionPostgresStore manages the native daily partitions of the events
// table: usability_events_pYYYYMMDD holds [day, day+1) in UTC.
type PartitionPostgresStore struct {
	pool *pgxpool.Pool

	mu    sync.Mutex
	known map[int64]bool // Unix seconds of days whose partition exists
}

// NewPartitionPostgresStore returns the store.
func NewPartitionPostgresStore(pool *pgxpool.Pool) *PartitionPostgresStore {
	return &PartitionPostgresStore{pool: pool, known: map[int64]bool{}}
}

var _ usability.PartitionStore = (*PartitionPostgresStore)(nil)

// Day is the start of t's UTC day.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// PartitionName is the name of the partition holding day.
func PartitionName(day time.Time) string { return "usability_events_p" + day.Format("20060102") }

// Ensure creates the missing daily partitions that cover [from, to).
func (s *PartitionPostgresStore) Ensure(ctx context.Context, from, to time.Time) ([]usability.Partition, error) {
	var days []time.Time
	for d := Day(from); d.Before(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return s.ensureDays(ctx, days)
}

// EnsureFor makes sure every event has its partition; it asks PostgreSQL only
// about days this process has not seen yet.
func (s *PartitionPostgresStore) EnsureFor(ctx context.Context, events []usability.Event) error {
	var missing []time.Time
	seen := map[int64]bool{}
	s.mu.Lock()
	for i := range events {
		d := Day(events[i].OccurredAt)
		if u := d.Unix(); !s.known[u] && !seen[u] {
			seen[u] = true
			missing = append(missing, d)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	_, err := s.ensureDays(ctx, missing)
	return err
}

// Forget drops what this process believes exists (after a partition was found
// missing, say because another replica dropped it).
func (s *PartitionPostgresStore) Forget() {
	s.mu.Lock()
	s.known = map[int64]bool{}
	s.mu.Unlock()
}

func (s *PartitionPostgresStore) ensureDays(ctx context.Context, days []time.Time) ([]usability.Partition, error) {
	var created []usability.Partition
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		created = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionLockKey)); err != nil {
			return err
		}
		existing, err := listPartitions(ctx, tx)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, p := range existing {
			have[p.Name] = true
		}
		for _, d := range days {
			name := PartitionName(d)
			if have[name] {
				continue
			}
			to := d.AddDate(0, 0, 1)
			sql := fmt.Sprintf(`CREATE TABLE metrics.%s PARTITION OF metrics.usability_events FOR VALUES FROM ('%s') TO ('%s')`,
				pgx.Identifier{name}.Sanitize(), d.Format(time.RFC3339), to.Format(time.RFC3339))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("create partition %s: %w", name, err)
			}
			created = append(created, usability.Partition{Name: name, From: d, To: to})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, d := range days {
		s.known[d.Unix()] = true
	}
	s.mu.Unlock()
	return created, nil
}

// DropBefore drops the partitions whose range ends at or before t.
func (s *PartitionPostgresStore) DropBefore(ctx context.Context, t time.Time) ([]usability.Partition, error) {
	var dropped []usability.Partition
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		dropped = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionLockKey)); err != nil {
			return err
		}
		existing, err := listPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, p := range existing {
			if p.To.After(t) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE metrics.`+pgx.Identifier{p.Name}.Sanitize()); err != nil {
				return fmt.Errorf("drop partition %s: %w", p.Name, err)
			}
			dropped = append(dropped, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, p := range dropped {
		delete(s.known, p.From.Unix())
	}
	s.mu.Unlock()
	return dropped, nil
}

// List returns the daily partitions present, oldest first.
func (s *PartitionPostgresStore) List(ctx context.Context) ([]usability.Partition, error) {
	return listPartitions(ctx, s.pool)
}

// PruneRollups deletes the classroom rollups of minutes before t.
func (s *PartitionPostgresStore) PruneRollups(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	for _, table := range []string{"classroom_minute_students", "classroom_minute_items", "classroom_minutes"} {
		tag, err := s.pool.Exec(ctx, `DELETE FROM metrics.`+table+` WHERE minute < $1`, t)
		if err != nil {
			return n, err
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func listPartitions(ctx context.Context, q querier) ([]usability.Partition, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = p.relnamespace
		WHERE n.nspname = 'metrics' AND p.relname = 'usability_events'`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var out []usability.Partition
	for _, name := range names {
		m := partitionNameRE.FindStringSubmatch(name)
		if m == nil {
			continue // not ours (an operator's default partition, say)
		}
		d, err := time.Parse("20060102", m[1])
		if err != nil {
			continue
		}
		out = append(out, usability.Partition{Name: name, From: d, To: d.AddDate(0, 0, 1)})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].From.Before(out[b].From) })
	return out, nil
}
