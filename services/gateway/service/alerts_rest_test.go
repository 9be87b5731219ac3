package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gaia-platform/gaia/internal/auth"
	gaiaproto "github.com/gaia-platform/gaia/proto"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// restCall sends a JSON request with a bearer credential through the
// system's checked client and decodes the answer into out (when not nil),
// failing unless the status is want.
func (s *system) restCall(t *testing.T, token, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(s.ctx, method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.rest.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

type restAlert struct {
	AlertID     string `json:"alert_id"`
	ClassroomID string `json:"classroom_id"`
	StudentID   string `json:"student_id"`
	Indicator   string `json:"indicator"`
	State       string `json:"state"`
}

// The teacher's side of the API over REST, every request, answer and stream
// line checked against the OpenAPI document by openapitest: an admin assigns
// the classroom; GET /v1/teachers/{teacher_id}/alerts:subscribe streams
// newline-delimited JSON, a heartbeat as soon as the stored alerts are in,
// then each alert (a classroom not assigned to the teacher is 403 before any
// line); the alert is listed, acknowledged, intervened on and resolved; the
// classroom overview is read; the detection settings are patched with a
// field mask in the query string.
func TestTeacherFlowOverREST(t *testing.T) {
	sys := startSystem(t, dashboardtest.Options{})
	admin := sys.coord.AdminToken
	var assigned struct {
		Assignment struct {
			TeacherID   string `json:"teacher_id"`
			ClassroomID string `json:"classroom_id"`
		} `json:"assignment"`
	}
	sys.restCall(t, admin, "PUT", "/v1/teachers/t-rest/classrooms/room-rest", map[string]any{"display_name": "5B maths"}, 200, &assigned)
	if assigned.Assignment.TeacherID != "t-rest" || assigned.Assignment.ClassroomID != "room-rest" {
		t.Fatalf("assignment = %+v", assigned)
	}
	teacher := sys.coord.Keys.Token(t, auth.Spec{Role: auth.RoleTeacher, TeacherID: "t-rest", TTL: time.Hour})

	get := func(path string) *http.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(sys.ctx, 60*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+teacher)
		resp, err := sys.rest.Do(req)
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
	next := func() map[string]json.RawMessage {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		var m struct {
			Result map[string]json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil || m.Result == nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		return m.Result
	}
	if first := next(); first["heartbeat"] == nil {
		t.Fatalf("first line %s, want a heartbeat", lines.Text())
	}
	sys.post(sys.rageClick("room-rest", "sam"))
	var streamed restAlert
	for streamed.AlertID == "" {
		if raw := next()["alert"]; raw != nil {
			if err := json.Unmarshal(raw, &streamed); err != nil {
				t.Fatal(err)
			}
		}
	}
	if streamed.StudentID != "sam" || streamed.Indicator != "INDICATOR_RAGE_CLICK" || streamed.ClassroomID != "room-rest" {
		t.Fatalf("alert %+v", streamed)
	}

	var listed struct {
		Alerts []restAlert `json:"alerts"`
	}
	sys.restCall(t, teacher, "GET", "/v1/teachers/t-rest/alerts?classroom_ids=room-rest&states=ALERT_STATE_OPEN&page_size=10", nil, 200, &listed)
	if len(listed.Alerts) != 1 || listed.Alerts[0].AlertID != streamed.AlertID {
		t.Fatalf("listed %+v, want alert %s", listed.Alerts, streamed.AlertID)
	}
	alertPath := "/v1/alerts/" + streamed.AlertID
	var changed struct {
		Alert restAlert `json:"alert"`
	}
	sys.restCall(t, teacher, "POST", alertPath+":acknowledge", map[string]any{"teacher_id": "t-rest"}, 200, &changed)
	if changed.Alert.State != "ALERT_STATE_ACKNOWLEDGED" {
		t.Errorf("acknowledged alert is %s", changed.Alert.State)
	}
	var recorded struct {
		Intervention struct {
			AlertID string `json:"alert_id"`
			Action  string `json:"action"`
		} `json:"intervention"`
	}
	sys.restCall(t, teacher, "POST", alertPath+"/interventions", map[string]any{"teacher_id": "t-rest", "action": "INTERVENTION_ACTION_GAVE_HINT", "notes": "pointed at the denominator"}, 200, &recorded)
	if recorded.Intervention.AlertID != streamed.AlertID || recorded.Intervention.Action != "INTERVENTION_ACTION_GAVE_HINT" {
		t.Errorf("intervention = %+v", recorded.Intervention)
	}
	sys.restCall(t, teacher, "POST", alertPath+":resolve", map[string]any{"teacher_id": "t-rest", "outcome": "ALERT_OUTCOME_HELPED", "notes": "back on track"}, 200, &changed)
	if changed.Alert.State != "ALERT_STATE_RESOLVED" {
		t.Errorf("resolved alert is %s", changed.Alert.State)
	}
	var overview struct {
		ClassroomID string `json:"classroom_id"`
		Students    []struct {
			StudentID string `json:"student_id"`
		} `json:"students"`
	}
	sys.restCall(t, teacher, "GET", "/v1/classrooms/room-rest/overview?teacher_id=t-rest", nil, 200, &overview)
	if overview.ClassroomID != "room-rest" {
		t.Errorf("overview = %+v", overview)
	}

	// Detection settings, the field mask in the query string: its paths are
	// the JSON body's snake_case names, dotted for nested fields. The
	// gateway passes them on unchanged, so lowerCamelCase is refused. (As
	// the admin: this kit's metrics service cannot ask the dashboard, which
	// starts after it, for a teacher's classrooms.)
	settings := "/v1/classrooms/room-rest/detection-settings"
	var updated struct {
		Settings struct {
			DisabledIndicators []string       `json:"disabled_indicators"`
			Thresholds         map[string]any `json:"thresholds"`
		} `json:"settings"`
	}
	body := map[string]any{"disabled_indicators": []string{"INDICATOR_IDLE"}, "thresholds": map[string]any{"idle_timeout": "300s"}}
	sys.restCall(t, admin, "PATCH", settings+"?update_mask="+url.QueryEscape("disabled_indicators,thresholds.idle_timeout"), body, 200, &updated)
	if d := updated.Settings.DisabledIndicators; len(d) != 1 || d[0] != "INDICATOR_IDLE" || updated.Settings.Thresholds["idle_timeout"] != "300s" {
		t.Errorf("settings after the patch = %+v", updated.Settings)
	}
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	sys.restCall(t, admin, "PATCH", settings+"?update_mask=disabledIndicators", body, 400, &e)
	if e.Error.Code != 3 || !strings.Contains(e.Error.Message, "update_mask") {
		t.Errorf("a lowerCamelCase mask: %+v, want INVALID_ARGUMENT naming update_mask", e)
	}
	// The document's own example of the parameter is accepted.
	example := updateMaskExample(t)
	sys.restCall(t, admin, "PATCH", settings+"?update_mask="+url.QueryEscape(example), body, 200, nil)
	sys.restCall(t, admin, "GET", settings, nil, 200, nil)
}

// updateMaskExample is the example the document gives for
// UpdateDetectionSettings' update_mask query parameter.
func updateMaskExample(t *testing.T) string {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gaiaproto.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Paths.Find("/v1/classrooms/{classroom_id}/detection-settings").Patch
	p := op.Parameters.GetByInAndName("query", "update_mask")
	if p == nil || p.Schema == nil || p.Schema.Value == nil {
		t.Fatal("the document has no update_mask query parameter for UpdateDetectionSettings")
	}
	ex, _ := p.Schema.Value.Example.(string)
	if ex == "" {
		t.Fatalf("update_mask has no example: %+v", p.Schema.Value)
	}
	return ex
}
