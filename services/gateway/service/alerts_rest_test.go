package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// GET /v1/teachers/{teacher_id}/alerts:subscribe streams newline-delimited
// JSON: a heartbeat as soon as the stored alerts are in, then each alert; a
// classroom not assigned to the teacher is 403 before any line.
func TestSubscribeAlertsOverREST(t *testing.T) {
	sys := startSystem(t, dashboardtest.Options{})
	sys.assign("t-rest", "room-rest", "")
	teacher := sys.coord.Keys.Token(t, auth.Spec{Role: auth.RoleTeacher, TeacherID: "t-rest", TTL: time.Hour})
	get := func(path string) *http.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(sys.ctx, 60*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+teacher)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	if resp := get("/v1/teachers/t-rest/alerts:subscribe?classroom_ids=room-other"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("subscribing to another classroom: HTTP %d, want 403", resp.StatusCode)
	}
	resp := get("/v1/teachers/t-rest/alerts:subscribe?classroom_ids=room-rest&after_alert_id=0")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() map[string]any {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		var m struct {
			Result map[string]any `json:"result"`
		}
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil || m.Result == nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		return m.Result
	}
	if first := next(); first["heartbeat"] == nil {
		t.Fatalf("first line %v, want a heartbeat", first)
	}
	sys.post(sys.rageClick("room-rest", "sam"))
	for {
		m := next()
		if a, ok := m["alert"].(map[string]any); ok && a != nil {
			if a["student_id"] != "sam" || a["indicator"] != "INDICATOR_RAGE_CLICK" || a["classroom_id"] != "room-rest" {
				t.Fatalf("alert %v", a)
			}
			return
		}
	}
}
