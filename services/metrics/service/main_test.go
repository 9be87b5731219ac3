package service_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/pgtest"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is one metrics service on a database of the test's own.
type env struct {
	db  string
	svc *metricstest.Metrics
	cli metricsv1.MetricsServiceClient
	ctx context.Context
}

func newEnv(t *testing.T, opts metricstest.Options) *env {
	t.Helper()
	db := pgtest.NewDatabase(t)
	svc := metricstest.Start(t, db, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{db: db, svc: svc, cli: svc.Client(), ctx: ctx}
}

func (e *env) pool(t *testing.T) *pgxpool.Pool { return pgtest.Pool(t, e.db) }

// click, attempt … build valid events.
func event(id, classroom, student string, kind metricsv1.EventKind, at time.Time) *metricsv1.UsabilityEvent {
	return &metricsv1.UsabilityEvent{EventId: id, AppId: "fractions-app", ClassroomId: classroom, StudentId: student,
		ItemId: "item-1", Kind: kind, OccurredAt: timestamppb.New(at)}
}

func attempt(id, classroom, student, item string, correct bool, at time.Time) *metricsv1.UsabilityEvent {
	e := event(id, classroom, student, metricsv1.EventKind_EVENT_KIND_ATTEMPT, at)
	e.ItemId, e.Correct = item, proto.Bool(correct)
	return e
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// storedCount counts rows per event id in the table.
func storedCount(t *testing.T, p *pgxpool.Pool, where string, args ...any) int {
	t.Helper()
	var n int
	if err := p.QueryRow(context.Background(), `SELECT count(*) FROM metrics.usability_events `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// scrape reads a Prometheus text exposition into series → value, the series
// written as the exposition writes it (labels sorted by name).
func scrape(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// scrapeSum returns a histogram's count and sum.
func scrapeSum(t testing.TB, addr, name string) (count, sum float64) {
	m := scrape(t, addr)
	return m[name+"_count"], m[name+"_sum"]
}

// waitRollups polls until the classroom rollups count every stored event
// (they are kept off the write path, a moment behind).
func waitRollups(t testing.TB, p *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var stored, rolled int64
		if err := p.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM metrics.usability_events),
			(SELECT coalesce(sum(events), 0) FROM metrics.classroom_minutes)`).Scan(&stored, &rolled); err != nil {
			t.Fatal(err)
		}
		if stored == rolled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollups count %d of %d stored events after 30s", rolled, stored)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
