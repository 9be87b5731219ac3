package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/pgtest"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// TestMetricsCommandsAgainstARealService sends a file of events twice (the
// second time everything is a duplicate), with a bad line and a bad event,
// posts nothing else, and reads the snapshots back as a table and as JSON.
func TestMetricsCommandsAgainstARealService(t *testing.T) {
	svc := metricstest.Start(t, pgtest.NewDatabase(t), metricstest.Options{Quiet: true})
	t.Setenv(tokenEnv, svc.AdminToken)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var lines []string
	for i := range 25 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"cli-%d","app_id":"fractions","classroom_id":"room-cli","student_id":"s-%d","item_id":"q1","kind":"attempt","correct":%v,"occurred_at":%q}`, i, i%4, i%3 == 0, now))
	}
	lines = append(lines, `{"event_id": broken`, fmt.Sprintf(`{"event_id":"cli-bad","app_id":"fractions","classroom_id":"room-cli","student_id":"s-1","kind":"click","correct":true,"occurred_at":%q}`, now))
	file := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	code := run([]string{"metrics", "send", "--metrics", svc.Addr, "--batch", "10", file}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "27 events: 25 accepted, 0 duplicates, 2 rejected") ||
		!strings.Contains(out.String(), "line 26: not a usability event") || !strings.Contains(out.String(), "line 27: events[5].correct") {
		t.Fatalf("first send: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	code = run([]string{"metrics", "send", "--metrics", svc.Addr, "--json", file}, &out, &errOut)
	var sum sendSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || code != 1 || sum.Accepted != 0 || sum.Duplicates != 25 || len(sum.Rejected) != 2 {
		t.Fatalf("second send: exit %d, %+v (%v)\n%s", code, sum, err, errOut.String())
	}

	// The rollups follow a moment behind the write.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out.Reset()
		if code := run([]string{"classroom", "snapshots", "room-cli", "--metrics", svc.Addr, "--json"}, &out, &errOut); code != 0 {
			t.Fatalf("classroom snapshots: exit %d: %s", code, errOut.String())
		}
		if strings.Contains(out.String(), `"events":"25"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshots never showed 25 events: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out.Reset()
	if code := run([]string{"classroom", "snapshots", "room-cli", "--metrics", svc.Addr}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "MINUTE") || !strings.Contains(out.String(), "q1 64% (16/25)") {
		t.Fatalf("classroom snapshots table: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"ratings", "summary", "--metrics", svc.Addr, "--classroom", "room-cli"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "0 ratings") {
		t.Fatalf("ratings summary: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"ratings", "summary", "--metrics", svc.Addr}, &out, &errOut); code != exitUsage {
		t.Fatalf("ratings summary without a classroom or app: exit %d: %s", code, errOut.String())
	}
}

func TestSendProgressBar(t *testing.T) {
	for _, c := range []struct {
		read, total int64
		want        string
	}{
		{25, 100, "[#####---------------]  25.0%  "},
		{100, 100, "[####################] 100.0%  "},
		{10, 0, ""}, // stdin: size unknown, counts only
	} {
		if got := (&countingReader{read: c.read, total: c.total}).bar(); got != c.want {
			t.Errorf("%d of %d: %q, want %q", c.read, c.total, got, c.want)
		}
	}
}
