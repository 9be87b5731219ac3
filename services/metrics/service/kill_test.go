package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/pgtest"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

// metricsProcess is the metrics binary running as its own process.
type metricsProcess struct {
	cmd  *exec.Cmd
	addr string
}

func buildMetrics(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "metrics")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build services/metrics: %v\n%s", err, out)
	}
	return bin
}

// startMetricsProcess runs the binary; extra (NAME=value) override the
// defaults, which leave the frustration detector off.
func startMetricsProcess(t testing.TB, keys *authtest.Keys, bin, db, addr string, extra ...string) *metricsProcess {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(name, "_ADDR") || strings.HasPrefix(name, "USABILITY_") || name == "DATABASE_URL" || strings.HasPrefix(name, "LOG_") || strings.HasPrefix(name, "AUTH_") || name == "GAIA_AUTH" {
			continue
		}
		env = append(env, kv)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(env, "DATABASE_URL="+db, "METRICS_LISTEN_ADDR="+addr, "METRICS_PROMETHEUS_LISTEN_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json", "LOG_LEVEL=info", "FRUSTRATION_DETECTION_ENABLED=false", "AUTH_PUBLIC_KEYS_FILE="+keys.PublicKeysFile,
		// Durability under load is the point here, not the rate limits.
		"AUTH_RATE_LIMIT=0")
	cmd.Env = append(cmd.Env, extra...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &metricsProcess{cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"grpc_address"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "metrics ready" {
				ready <- line.Addr
			}
		}
	}()
	select {
	case p.addr = <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("the metrics process did not become ready within 60s")
	}
	return p
}

// TestKill9UnderLoadLosesNoAcknowledgedEvent: clients post batches to the
// metrics process while it is killed with SIGKILL; after a restart they
// retry what was not acknowledged. Every acknowledged event is in the table
// exactly once, and so is every event that was eventually acknowledged.
func TestKill9UnderLoadLosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" { // CI runs every test
		t.Skip("builds and kills a process")
	}
	bin := buildMetrics(t)
	keys := authtest.New(t)
	db := pgtest.NewDatabase(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	proc := startMetricsProcess(t, keys, bin, db, addr)

	conn, err := grpcclient.Dial(addr, grpcclient.WithBearer(keys.Admin(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cli := metricsv1.NewMetricsServiceClient(conn)

	const clients, perBatch = 24, 20
	var acked sync.Map // event id → true
	var ackedBatches atomic.Int64
	killed := make(chan struct{})
	pending := make([]*metricsv1.RecordMetricsRequest, clients)
	var wg sync.WaitGroup
	now := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				req := batch(fmt.Sprintf("k%d-%d", c, b), fmt.Sprintf("room-%d", c%6), perBatch, now)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := cli.RecordMetrics(ctx, req)
				cancel()
				if err != nil {
					pending[c] = req // not acknowledged: retried after the restart
					return
				}
				if int(resp.Accepted) != perBatch {
					t.Errorf("first send of a batch: accepted %d, want %d", resp.Accepted, perBatch)
				}
				for _, e := range req.Events {
					acked.Store(e.EventId, true)
				}
				ackedBatches.Add(1)
				select {
				case <-killed:
					return
				default:
				}
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for ackedBatches.Load() < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d batches acknowledged in 60s", ackedBatches.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.cmd.Wait()
	close(killed)
	wg.Wait()
	ackedAtKill := 0
	acked.Range(func(_, _ any) bool { ackedAtKill++; return true })

	startMetricsProcess(t, keys, bin, db, addr)
	retried := 0
	for _, req := range pending {
		if req == nil {
			continue
		}
		retried++
		var resp *metricsv1.RecordMetricsResponse
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err = cli.RecordMetrics(ctx, req)
			cancel()
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("retry after the restart: %v", err)
		}
		if int(resp.Accepted+resp.Duplicates) != perBatch {
			t.Fatalf("retry: accepted %d + duplicates %d, want %d", resp.Accepted, resp.Duplicates, perBatch)
		}
		for _, e := range req.Events {
			acked.Store(e.EventId, true)
		}
	}

	pool := pgtest.Pool(t, db)
	counts := map[string]int{}
	rows, err := pool.Query(context.Background(), `SELECT event_id, count(*) FROM metrics.usability_events GROUP BY event_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	total := 0
	acked.Range(func(k, _ any) bool {
		total++
		if n := counts[k.(string)]; n != 1 {
			t.Errorf("acknowledged event %s is stored %d times", k, n)
		}
		return true
	})
	if len(counts) != total {
		t.Errorf("the table holds %d events; %d were acknowledged in the end", len(counts), total)
	}
	t.Logf("%d events acknowledged before the kill, %d batches retried after it, %d stored", ackedAtKill, retried, len(counts))
}
