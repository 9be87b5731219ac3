package service_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

func batch(prefix, classroom string, n int, at time.Time) *metricsv1.RecordMetricsRequest {
	req := &metricsv1.RecordMetricsRequest{}
	for i, id := range ids(prefix, n) {
		req.Events = append(req.Events, attempt(id, classroom, fmt.Sprintf("s-%d", i%7), fmt.Sprintf("item-%d", i%3), i%2 == 0, at))
	}
	return req
}

func record(t *testing.T, ctx context.Context, cli metricsv1.MetricsServiceClient, req *metricsv1.RecordMetricsRequest, accepted, duplicates int) {
	t.Helper()
	resp, err := cli.RecordMetrics(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.Accepted) != accepted || int(resp.Duplicates) != duplicates || len(resp.Rejected) != 0 {
		t.Fatalf("accepted %d, duplicates %d, rejected %v; want %d, %d, none", resp.Accepted, resp.Duplicates, resp.Rejected, accepted, duplicates)
	}
}

// TestRecordMetricsRetryStoresNothingTwice: a retried batch reports
// duplicates, on the same replica, on another replica, and when it lands
// after a partition boundary; a batch mixing new and retried events stores
// only the new ones; a batch repeating an event counts the copy once.
func TestRecordMetricsRetryStoresNothingTwice(t *testing.T) {
	e := newEnv(t, metricstest.Options{})
	other := metricstest.Start(t, e.db, metricstest.Options{Quiet: true}).Client()
	now := time.Now()

	first := batch("r", "room-1", 50, now)
	record(t, e.ctx, e.cli, first, 50, 0)
	record(t, e.ctx, e.cli, first, 0, 50) // same replica
	record(t, e.ctx, other, first, 0, 50) // another replica

	mixed := batch("r", "room-1", 80, now) // 50 stored, 30 new
	record(t, e.ctx, other, mixed, 30, 50)

	// The same event twice in one batch: stored once, the copy a duplicate.
	twice := &metricsv1.RecordMetricsRequest{Events: append(batch("twice", "room-1", 1, now).Events, batch("twice", "room-1", 1, now).Events...)}
	record(t, e.ctx, e.cli, twice, 1, 1)

	// Across a partition boundary: events of yesterday's last microsecond and
	// today's first, retried after today's and tomorrow's partitions exist.
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if midnight.After(now) {
		midnight = midnight.AddDate(0, 0, -1)
	}
	edge := &metricsv1.RecordMetricsRequest{Events: append(batch("edge-a", "room-2", 5, midnight.Add(-time.Microsecond)).Events,
		batch("edge-b", "room-2", 5, midnight).Events...)}
	record(t, e.ctx, e.cli, edge, 10, 0)
	record(t, e.ctx, other, edge, 0, 10)

	p := e.pool(t)
	var parts int
	if err := p.QueryRow(e.ctx, `SELECT count(DISTINCT tableoid) FROM metrics.usability_events WHERE event_id LIKE 'edge-%'`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts != 2 {
		t.Fatalf("the boundary events are in %d partitions, want 2", parts)
	}
	if n := storedCount(t, p, ``); n != 80+1+10 {
		t.Fatalf("%d events stored, want 91", n)
	}
	var twiceStored int
	if err := p.QueryRow(e.ctx, `SELECT count(*) FROM (SELECT 1 FROM metrics.usability_events
		GROUP BY classroom_id, app_id, event_id HAVING count(*) > 1) d`).Scan(&twiceStored); err != nil || twiceStored != 0 {
		t.Fatalf("%d events stored twice (%v)", twiceStored, err)
	}
}

// TestGroupCommitAnswersMatchTheTable: many concurrent callers with
// overlapping events on two replicas; each event is accepted by exactly one
// caller, every caller's counts add up, the table holds each event once, and
// the writes were merged (fewer transactions than requests).
func TestGroupCommitAnswersMatchTheTable(t *testing.T) {
	e := newEnv(t, metricstest.Options{Quiet: true})
	other := metricstest.Start(t, e.db, metricstest.Options{Quiet: true}).Client()
	const callers, rounds, perBatch, distinct = 64, 10, 10, 2000
	now := time.Now()
	var mu sync.Mutex
	acceptedBy := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := e.cli
			if c%2 == 1 {
				cli = other
			}
			for r := range rounds {
				req := &metricsv1.RecordMetricsRequest{}
				for i := range perBatch {
					// Overlapping ids: callers collide on purpose.
					n := (c*7919 + r*104729 + i*31) % distinct
					req.Events = append(req.Events, attempt(fmt.Sprintf("g-%d", n), fmt.Sprintf("room-%d", n%5), fmt.Sprintf("s-%d", n%40), "item-1", n%3 == 0, now))
				}
				resp, err := cli.RecordMetrics(e.ctx, req)
				if err != nil {
					errs <- err
					return
				}
				if int(resp.Accepted+resp.Duplicates) != perBatch {
					errs <- fmt.Errorf("accepted %d + duplicates %d != %d", resp.Accepted, resp.Duplicates, perBatch)
					return
				}
				mu.Lock()
				acceptedBy["total"] += int(resp.Accepted)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p := e.pool(t)
	stored := storedCount(t, p, ``)
	if acceptedBy["total"] != stored {
		t.Fatalf("callers were told %d events were stored; the table holds %d", acceptedBy["total"], stored)
	}
	var distinctStored int
	if err := p.QueryRow(e.ctx, `SELECT count(DISTINCT event_id) FROM metrics.usability_events`).Scan(&distinctStored); err != nil {
		t.Fatal(err)
	}
	if distinctStored != stored {
		t.Fatalf("%d rows but %d distinct events", stored, distinctStored)
	}
	groups, requests := scrapeSum(t, e.svc.PrometheusAddr, "gaia_metrics_group_commit_requests")
	if requests < callers*rounds/2 || groups >= requests {
		t.Fatalf("%v requests in %v group commits on one replica: writes were not merged", requests, groups)
	}
	t.Logf("%d events stored; %v requests in %v commits on one replica", stored, requests, groups)
}
