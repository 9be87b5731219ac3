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

	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// scrape reads a Prometheus text exposition into series → value, the series
// written as the exposition writes it (labels sorted by name).
func scrape(ctx context.Context, t *testing.T, addr string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
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
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsReportTheWorkDone does some work of every kind and checks the
// scrape: queue depth by state and type, the settlement counters, and the
// claim latency histogram.
func TestMetricsReportTheWorkDone(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	w := e.register(ctx, "metered", agentOpts{maxTasks: 20})
	const typ = "metered.job"
	for i := range 10 {
		e.enqueue(ctx, newTaskReq(keyOf("m", i), typ, int32(i), "", i))
	}
	e.enqueue(ctx, newTaskReq(keyOf("m", 0), typ, 0, "", 0)) // a duplicate is not counted
	e.enqueue(ctx, newTaskReq("other-type", "other", 0, "", 0))

	claimCalls := 0
	var claimed int
	for claimed < 7 {
		claims, err := e.claim(ctx, w, int32(7-claimed), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		claimCalls++
		for _, c := range claims {
			claimed++
			switch n := int(c.GetTask().GetPayload().GetFields()["n"].GetNumberValue()); {
			case n >= 5: // 9, 8, 7, 6, 5 by priority
				if _, err := e.complete(ctx, w, c); err != nil {
					t.Fatal(err)
				}
			case n == 4:
				if _, err := e.fail(ctx, w, c, true); err != nil {
					t.Fatal(err)
				}
			default:
				if _, err := e.fail(ctx, w, c, false); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	m := scrape(ctx, t, e.q.MetricsAddr)
	series := func(name string, labels ...string) string {
		if len(labels) == 0 {
			return name
		}
		return name + "{" + strings.Join(labels, ",") + "}"
	}
	tl := fmt.Sprintf("task_type=%q", typ)
	want := map[string]float64{
		series("gaia_taskqueue_tasks", `state="completed"`, tl):                5,
		series("gaia_taskqueue_tasks", `state="pending"`, tl):                  4, // 3 never claimed, 1 retrying
		series("gaia_taskqueue_tasks", `state="dead"`, tl):                     1,
		series("gaia_taskqueue_tasks", `state="pending"`, `task_type="other"`): 1,
		series("gaia_taskqueue_tasks_enqueued_total", tl):                      10,
		series("gaia_taskqueue_tasks_claimed_total", tl):                       7,
		series("gaia_taskqueue_tasks_completed_total", tl):                     5,
		series("gaia_taskqueue_tasks_retried_total", tl):                       1,
		series("gaia_taskqueue_tasks_dead_total", tl):                          1,
	}
	for s, v := range want {
		got, ok := m[s]
		if !ok {
			t.Errorf("scrape lacks %s", s)
		} else if got != v {
			t.Errorf("%s = %g, want %g", s, got, v)
		}
	}
	if _, ok := m[series("gaia_taskqueue_tasks", `state="claimed"`, tl)]; ok {
		t.Errorf("a claimed gauge for %s, but nothing is claimed", typ)
	}
	// Every claim call that returned tasks was timed; none took long.
	count, sum := m["gaia_taskqueue_claim_duration_seconds_count"], m["gaia_taskqueue_claim_duration_seconds_sum"]
	if count < float64(claimCalls) || sum <= 0 || sum/count > 1 {
		t.Errorf("claim_duration_seconds: count %g (want ≥ %d), sum %g", count, claimCalls, sum)
	}
	if inf := m[`gaia_taskqueue_claim_duration_seconds_bucket{le="+Inf"}`]; inf != count {
		t.Errorf("claim_duration_seconds +Inf bucket %g, count %g", inf, count)
	}
	if t.Failed() {
		for s, v := range m {
			if strings.HasPrefix(s, "gaia_taskqueue") {
				t.Logf("%s %g", s, v)
			}
		}
	}
}

// TestClientChosenTaskTypesDoNotGrowMetricSeries is the regression test for
// label values chosen by clients: every distinct task_type was a series of
// every counter and of the depth gauge, so 30k types made /metrics 9.6 MB.
// Types outside TASK_METRIC_TYPES are counted as "other".
func TestClientChosenTaskTypesDoNotGrowMetricSeries(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{}, queuetest.Options{MetricTaskTypes: []string{"known"}})
	ctx := testCtx(t, time.Minute)
	const distinct = 40
	for i := range distinct {
		e.enqueue(ctx, newTaskReq(keyOf("odd", i), fmt.Sprintf("chosen-by-client-%d", i), 0, "", i))
	}
	e.enqueue(ctx, newTaskReq("known-1", "known", 0, "", 0))

	m := scrape(ctx, t, e.q.MetricsAddr)
	labels := map[string]bool{}
	for s := range m {
		if i := strings.Index(s, `task_type="`); i >= 0 && strings.HasPrefix(s, "gaia_taskqueue") {
			v := s[i+len(`task_type="`):]
			labels[v[:strings.IndexByte(v, '"')]] = true
		}
	}
	if len(labels) != 2 || !labels["known"] || !labels["other"] {
		t.Errorf("task_type label values %v, want only known and other", labels)
	}
	for s, want := range map[string]float64{
		`gaia_taskqueue_tasks_enqueued_total{task_type="other"}`:  distinct,
		`gaia_taskqueue_tasks_enqueued_total{task_type="known"}`:  1,
		`gaia_taskqueue_tasks{state="pending",task_type="other"}`: distinct,
		`gaia_taskqueue_tasks{state="pending",task_type="known"}`: 1,
	} {
		if m[s] != want {
			t.Errorf("%s = %g, want %g", s, m[s], want)
		}
	}
}
