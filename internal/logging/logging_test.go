package logging

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestLevelFiltersMessages(t *testing.T) {
	tests := []struct {
		level string
		want  []string // messages that get through, of debug/info/warn/error
	}{
		{"debug", []string{"d", "i", "w", "e"}},
		{"info", []string{"i", "w", "e"}},
		{"warn", []string{"w", "e"}},
		{"error", []string{"e"}},
		{"INFO", []string{"i", "w", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := newLogger(tt.level, "json", zapcore.AddSync(&buf))
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			log.Error("e")

			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var entry map[string]any
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("line %q is not JSON: %v", line, err)
				}
				got = append(got, entry["msg"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("messages logged = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJSONEntryShape(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("info", "json", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("claim expired", zap.String("task_id", "t-1"), zap.Duration("lease", 1500*time.Millisecond))

	var entry map[string]any
	if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
		t.Fatalf("output %q is not one JSON object: %v", buf.String(), err)
	}
	if entry["msg"] != "claim expired" || entry["level"] != "info" || entry["task_id"] != "t-1" || entry["lease"] != "1.5s" {
		t.Errorf("entry = %v, want msg, level, task_id and lease=1.5s", entry)
	}
	ts, _ := entry["ts"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts); err != nil {
		t.Errorf("ts = %q, want ISO 8601: %v", ts, err)
	}
	if caller, _ := entry["caller"].(string); !strings.Contains(caller, "logging_test.go") {
		t.Errorf("caller = %q, want the logging call site", caller)
	}
}

func TestConsoleIsPlainText(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger("info", "console", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("grpc server serving", zap.String("addr", "127.0.0.1:8300"))

	line := buf.String()
	if strings.HasPrefix(line, "{") || strings.Contains(line, "\x1b[") {
		t.Errorf("console line %q is JSON or colored, want plain text", line)
	}
	for _, want := range []string{"INFO", "grpc server serving", `"addr": "127.0.0.1:8300"`} {
		if !strings.Contains(line, want) {
			t.Errorf("console line %q lacks %q", line, want)
		}
	}
	fields := strings.Fields(line)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z0700", fields[0]); err != nil {
		t.Errorf("console line starts with %q, want an ISO 8601 time: %v", fields[0], err)
	}
}

func TestNewRejectsUnknownSettings(t *testing.T) {
	tests := []struct {
		level, format, wantText string
	}{
		{"verbose", "json", `log level "verbose"`},
		{"info", "xml", `log format "xml"`},
		{"", "json", "want one of debug, info, warn, error"},
	}
	for _, tt := range tests {
		_, err := New(tt.level, tt.format)
		if err == nil || !strings.Contains(err.Error(), tt.wantText) {
			t.Errorf("New(%q, %q) error = %v, want it to say %q", tt.level, tt.format, err, tt.wantText)
		}
	}
}

func TestNewWritesToStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	log, err := New("info", "json")
	os.Stderr = saved
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("to stderr")
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"msg":"to stderr"`) || strings.Contains(string(out), "hidden") {
		t.Errorf("stderr got %q, want only the info entry", out)
	}
}
