package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/pgtest"
	"github.com/gaia-platform/gaia/internal/testnet"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	return testnet.FreeAddr(t)
}

// classScript is one student's lesson, in three phases: rage clicks, then ten
// wrong answers fired off on one item (struggle, wheel spinning, rapid
// guessing, an error burst), then thrashing at the keyboard. Each phase
// starts at its offset from the lesson's start.
func classScript(classroom, student string, start time.Time, phase int) []*metricsv1.UsabilityEvent {
	id := func(k string, i int) string { return fmt.Sprintf("%s-%s-%s%d", classroom, student, k, i) }
	at := func(d time.Duration) time.Time { return start.Add(d) }
	var out []*metricsv1.UsabilityEvent
	switch phase {
	case 1:
		pv := event(id("p", 0), classroom, student, metricsv1.EventKind_EVENT_KIND_PAGE_VIEW, at(0))
		pv.ItemId, pv.Attrs = "fractions-7", map[string]string{"action": "start"}
		out = append(out, pv)
		for i := range 3 {
			out = append(out, clickAt(id("c", i), classroom, student, at(time.Duration(i)*200*time.Millisecond), 100))
		}
	case 2:
		for i := range 10 {
			out = append(out, attempt(id("a", i), classroom, student, "fractions-7", false, at(2*time.Second+time.Duration(i)*500*time.Millisecond)))
		}
	case 3:
		for i := range 24 {
			k := event(id("k", i), classroom, student, metricsv1.EventKind_EVENT_KIND_KEYSTROKE, at(8*time.Second+time.Duration(i)*100*time.Millisecond))
			k.Attrs = map[string]string{"key": "backspace"}
			out = append(out, k)
		}
		pv := event(id("p", 1), classroom, student, metricsv1.EventKind_EVENT_KIND_PAGE_VIEW, at(11*time.Second))
		pv.ItemId, pv.Attrs = "fractions-7", map[string]string{"action": "finish"}
		out = append(out, pv)
	}
	return out
}

// TestDetectorTakeoverAfterKill9: two metrics processes share the detector
// partitions through a real coordinator; one is killed with SIGKILL in the
// middle of a simulated class. The other takes its partitions over within
// the lock TTL plus a second, and every expected frustration event exists
// exactly once.
func TestDetectorTakeoverAfterKill9(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" { // CI runs every test
		t.Skip("builds and kills processes")
	}
	bin := buildMetrics(t)
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	db := pgtest.NewDatabase(t)
	const partitions, lockTTL = 8, 2 * time.Second
	serviceToken := filepath.Join(t.TempDir(), "service.token")
	if err := os.WriteFile(serviceToken, []byte(coord.Keys.Service(t, "metrics")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"COORDINATOR_ADDR=" + coord.Addrs()[0], "FRUSTRATION_DETECTION_ENABLED=true", "AUTH_TOKEN_FILE=" + serviceToken,
		fmt.Sprintf("DETECTION_PARTITIONS=%d", partitions), "DETECTION_LOCK_TTL=" + lockTTL.String()}
	procs := []*metricsProcess{
		startMetricsProcess(t, coord.Keys, bin, db, freeAddr(t), env...),
		startMetricsProcess(t, coord.Keys, bin, db, freeAddr(t), env...),
	}
	var clis []metricsv1.MetricsServiceClient
	for _, p := range procs {
		conn, err := grpcclient.Dial(p.addr, grpcclient.WithBearer(coord.AdminToken))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		clis = append(clis, metricsv1.NewMetricsServiceClient(conn))
	}
	pool := pgtest.Pool(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The replicas spread the partitions evenly before the class starts.
	owners := func() map[string]int {
		rows, err := pool.Query(ctx, `SELECT owner, count(*) FROM metrics.detector_partitions WHERE partitions = $1 GROUP BY owner`, partitions)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var o string
			var n int
			if err := rows.Scan(&o, &n); err != nil {
				t.Fatal(err)
			}
			out[o] = n
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := owners()
		total := 0
		for _, n := range o {
			total += n
		}
		even := true
		for _, n := range o {
			even = even && n == partitions/2
		}
		if len(o) == 2 && total == partitions && even {
			t.Logf("partitions before the kill: %v", o)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not spread evenly over both replicas: %v", o)
		}
		time.Sleep(100 * time.Millisecond)
	}

	const classrooms, students = 4, 5
	start := time.Now()
	send := func(phase int, only int) {
		var wg sync.WaitGroup
		for c := range classrooms {
			for s := range students {
				cli := clis[(c*students+s)%2]
				if only >= 0 {
					cli = clis[only]
				}
				evs := classScript(fmt.Sprintf("room-%d", c), fmt.Sprintf("kid-%d", s), start, phase)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := cli.RecordMetrics(ctx, &metricsv1.RecordMetricsRequest{Events: evs}); err != nil {
						t.Errorf("record phase %d: %v", phase, err)
					}
				}()
			}
		}
		wg.Wait()
	}
	send(1, -1)
	time.Sleep(time.Until(start.Add(2 * time.Second)))
	// Half the class's wrong answers, then the kill.
	send(2, -1)
	if err := procs[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = procs[0].cmd.Wait()
	time.Sleep(time.Until(start.Add(8 * time.Second)))
	send(3, 1)

	// Takeover: the survivor owns every partition within the lock TTL + 1 s.
	var tookOver time.Duration
	for {
		o := owners()
		if len(o) == 1 {
			var latest time.Time
			if err := pool.QueryRow(ctx, `SELECT max(claimed_at) FROM metrics.detector_partitions WHERE partitions = $1`, partitions).Scan(&latest); err != nil {
				t.Fatal(err)
			}
			tookOver = latest.Sub(killedAt)
			break
		}
		if time.Since(killedAt) > 15*time.Second {
			t.Fatalf("no takeover 15 s after the kill: %v", owners())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("partitions taken over %v after the kill (lock TTL %v)", tookOver, lockTTL)
	if tookOver > lockTTL+time.Second {
		t.Errorf("takeover took %v, want < lock TTL + 1 s", tookOver)
	}

	// Every expected finding, exactly once: six per student, one hotspot
	// per classroom.
	perStudent := []string{"rage_click", "rapid_guessing", "error_burst", "struggle", "wheel_spinning", "keystroke_thrash"}
	want := classrooms*students*len(perStudent) + classrooms
	var got int
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics.frustration_events`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows, err := pool.Query(ctx, `SELECT classroom_id, student_id, indicator, count(*) FROM metrics.frustration_events GROUP BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for rows.Next() {
		var c, s, ind string
		var n int
		if err := rows.Scan(&c, &s, &ind, &n); err != nil {
			t.Fatal(err)
		}
		seen[c+"/"+s+"/"+ind] = n
	}
	rows.Close()
	for c := range classrooms {
		room := fmt.Sprintf("room-%d", c)
		for s := range students {
			for _, ind := range perStudent {
				if k := room + "/" + fmt.Sprintf("kid-%d", s) + "/" + ind; seen[k] != 1 {
					t.Errorf("%s: %d frustration events, want exactly 1", k, seen[k])
				}
			}
		}
		if k := room + "//classroom_hotspot"; seen[k] != 1 {
			t.Errorf("%s: %d, want exactly 1", k, seen[k])
		}
	}
	if got != want {
		t.Errorf("%d frustration events stored, want %d", got, want)
	}
	if t.Failed() {
		dumpDetectorState(t, pool, partitions, killedAt)
	}
}

// dumpDetectorState logs what a failed takeover test needs to be understood:
// each partition's owner and checkpoint, and where each classroom's events
// committed.
func dumpDetectorState(t *testing.T, pool *pgxpool.Pool, partitions int, killedAt time.Time) {
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT partition, owner, fencing_token, event_xid::text, event_ord, checkpointed_at, claimed_at
		FROM metrics.detector_partitions WHERE partitions = $1 ORDER BY partition`, partitions)
	if err != nil {
		t.Log(err)
		return
	}
	for rows.Next() {
		var n, ord int
		var owner, xid string
		var tok int64
		var cp, cl *time.Time
		_ = rows.Scan(&n, &owner, &tok, &xid, &ord, &cp, &cl)
		t.Logf("partition %d: owner %s token %d position (%s, %d) checkpointed %v claimed %v (killed at %v)", n, owner, tok, xid, ord, cp, cl, killedAt)
	}
	rows.Close()
	rows, err = pool.Query(ctx, `SELECT classroom_id, student_id, kind, commit_xid::text, min(commit_ord), count(*), min(received_at)
		FROM metrics.usability_events GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 4`)
	if err != nil {
		t.Log(err)
		return
	}
	for rows.Next() {
		var c, s, k, xid string
		var ord, n int
		var at time.Time
		_ = rows.Scan(&c, &s, &k, &xid, &ord, &n, &at)
		t.Logf("%s (partition %d) %s: %d %s events in xid %s from ord %d, received %v", c, detect.PartitionOf(c, partitions), s, n, k, xid, ord, at)
	}
	rows.Close()
}
