package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/gaia-platform/gaia/internal/openapitest"
	gateway "github.com/gaia-platform/gaia/services/gateway/service"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// startGateway runs the REST gateway in front of the metrics service (the
// other backends are never called here). edit, if given, changes its
// configuration first.
func startGateway(t testing.TB, metricsAddr string, edit ...func(*gateway.Config)) string {
	t.Helper()
	cfg := gateway.Config{ListenAddr: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second, Backends: gateway.Backends{
		Coordinator: "127.0.0.1:1", TaskQueue: "127.0.0.1:1", Metrics: metricsAddr, Dashboard: "127.0.0.1:1"}}
	for _, e := range edit {
		e(&cfg)
	}
	gw, err := gateway.New(context.Background(), cfg, zaptest.NewLogger(t).Named("gateway"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + gw.Addr().String()
}

// post sends body to url with the credential token, as an app would,
// through a client that checks every answer against the OpenAPI document
// (not the request: some are bad on purpose).
func post(t *testing.T, token, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := openapitest.ClientForBadRequests(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

// authGet is a GET presenting the credential token.
func authGet(client *http.Client, token, url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return client.Do(req)
}

// TestRESTThroughTheGateway: what an app does over REST, retries and bad
// input included; bad input gets a 4xx naming the field and the service
// stays healthy.
func TestRESTThroughTheGateway(t *testing.T) {
	e := newEnv(t, metricstest.Options{})
	base := startGateway(t, e.svc.Addr)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	good := fmt.Sprintf(`{"events": [
		{"event_id": "web-1", "app_id": "fractions", "classroom_id": "room-9", "student_id": "s-1", "item_id": "q1", "kind": "EVENT_KIND_ATTEMPT", "correct": false, "occurred_at": %q},
		{"event_id": "web-2", "app_id": "fractions", "classroom_id": "room-9", "student_id": "s-1", "kind": "EVENT_KIND_CLICK", "x": 10, "y": 20, "occurred_at": %q, "attrs": {"target": "submit"}},
		{"event_id": "web-3", "app_id": "fractions", "classroom_id": "room-9", "student_id": "s-2", "kind": "EVENT_KIND_HESITATION", "value": 4.5, "occurred_at": %q}
	]}`, now, now, now)
	code, body := post(t, e.svc.AdminToken, base+"/v1/metrics", good)
	if code != 200 || body["accepted"] != float64(3) || body["duplicates"] != float64(0) {
		t.Fatalf("POST /v1/metrics: %d %v", code, body)
	}
	code, body = post(t, e.svc.AdminToken, base+"/v1/metrics", good) // a retry
	if code != 200 || body["accepted"] != float64(0) || body["duplicates"] != float64(3) {
		t.Fatalf("retried POST /v1/metrics: %d %v", code, body)
	}
	// A batch with one bad event: 200, the bad one named.
	mixed := fmt.Sprintf(`{"events": [
		{"event_id": "web-4", "app_id": "fractions", "classroom_id": "room-9", "student_id": "s-3", "kind": "EVENT_KIND_HINT", "occurred_at": %q},
		{"event_id": "web-5", "app_id": "fractions", "classroom_id": "room-9", "student_id": "s-3", "kind": "EVENT_KIND_HINT", "correct": true, "occurred_at": %q}
	]}`, now, now)
	code, body = post(t, e.svc.AdminToken, base+"/v1/metrics", mixed)
	rejected, _ := body["rejected"].([]any)
	if code != 200 || body["accepted"] != float64(1) || len(rejected) != 1 || rejected[0].(map[string]any)["field"] != "events[1].correct" {
		t.Fatalf("mixed batch: %d %v", code, body)
	}

	bad := []struct {
		name, body string
		code       int
		mention    string
	}{
		{"malformed JSON", `{"events": [{"event_id": `, 400, ""},
		{"unknown kind", fmt.Sprintf(`{"events": [{"event_id": "x", "app_id": "a", "classroom_id": "c", "student_id": "s", "kind": "EVENT_KIND_SHOUT", "occurred_at": %q}]}`, now), 400, "kind"},
		{"unknown kind number", fmt.Sprintf(`{"events": [{"event_id": "x", "app_id": "a", "classroom_id": "c", "student_id": "s", "kind": 42, "occurred_at": %q}]}`, now), 400, "events[0].kind"},
		{"1 MB id", fmt.Sprintf(`{"events": [{"event_id": %q, "app_id": "a", "classroom_id": "c", "student_id": "s", "kind": "EVENT_KIND_HINT", "occurred_at": %q}]}`, strings.Repeat("i", 1<<20), now), 400, "events[0].event_id"},
		{"10 MB body", `{"events": [{"event_id": "` + strings.Repeat("x", 10<<20) + `"}]}`, 413, "request body"},
		{"unknown field", `{"events": [], "shout": 1}`, 400, "shout"},
	}
	for _, b := range bad {
		code, body := post(t, e.svc.AdminToken, base+"/v1/metrics", b.body)
		msg := errorMessage(body)
		if code != b.code || !strings.Contains(msg, b.mention) {
			t.Errorf("%s: %d %.300v; want %d mentioning %q", b.name, code, body, b.code, b.mention)
		}
	}
	// Still healthy: a good batch goes through.
	code, body = post(t, e.svc.AdminToken, base+"/v1/metrics", strings.ReplaceAll(good, "web-", "after-"))
	if code != 200 || body["accepted"] != float64(3) {
		t.Fatalf("after the bad input: %d %v", code, body)
	}

	// Ratings and their summary; a snapshot read back.
	rating := `{"rating_id": "r-1", "student_id": "s-1", "classroom_id": "room-9", "app_id": "fractions", "item_id": "q1", "rating": 2, "feedback": "too hard"}`
	if code, body := post(t, e.svc.AdminToken, base+"/v1/ratings", rating); code != 200 || body["duplicate"] != false {
		t.Fatalf("POST /v1/ratings: %d %v", code, body)
	}
	if code, body := post(t, e.svc.AdminToken, base+"/v1/ratings", rating); code != 200 || body["duplicate"] != true {
		t.Fatalf("retried POST /v1/ratings: %d %v", code, body)
	}
	if code, body := post(t, e.svc.AdminToken, base+"/v1/ratings", strings.Replace(rating, `"rating": 2`, `"rating": 6`, 1)); code != 400 || !strings.Contains(errorMessage(body), "rating") {
		t.Fatalf("rating 6: %d %v", code, body)
	}
	api := openapitest.Client(t)
	resp, err := authGet(api, e.svc.AdminToken, base+"/v1/ratings:summary?classroom_id=room-9")
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Count        string  `json:"count"`
		Mean         float64 `json:"mean"`
		Distribution []struct {
			Rating int    `json:"rating"`
			Count  string `json:"count"`
		} `json:"distribution"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sum.Count != "1" || sum.Mean != 2 || len(sum.Distribution) != 5 || sum.Distribution[1].Count != "1" {
		t.Fatalf("rating summary: %+v", sum)
	}
	waitRollups(t, e.pool(t))
	resp, err = authGet(api, e.svc.AdminToken, base+"/v1/classrooms/room-9/snapshots")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(raw, []byte(`"active_students":"3"`)) {
		t.Fatalf("GET snapshots: %d %s", resp.StatusCode, raw)
	}
}

// errorMessage is the message of a REST error answer, {"error": {"message": …}}.
func errorMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}
