package rest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/gateway/internal/rest"
)

// TestLessonPatchWithoutMaskChangesOnlyTheFieldsSent: a PATCH of a lesson
// without update_mask reached the service with an empty mask, which means
// every field, and wiped each field the body left out.
func TestLessonPatchWithoutMaskChangesOnlyTheFieldsSent(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		wantStatus               int
		wantPaths                []string
	}{
		{"one field", "PATCH", "/v1/lessons/l1", `{"priority": 0}`, 200, []string{"priority"}},
		{"two fields", "PATCH", "/v1/lessons/l1", `{"objective": "x", "name": "n"}`, 200, []string{"name", "objective"}},
		{"explicit mask kept", "PATCH", "/v1/lessons/l1", `{"name": "n", "update_mask": "name,priority"}`, 200, []string{"name", "priority"}},
		{"explicit camelCase mask kept", "PATCH", "/v1/lessons/l1", `{"name": "n", "updateMask": "objective"}`, 200, []string{"objective"}},
		{"empty mask is no mask", "PATCH", "/v1/lessons/l1", `{"name": "n", "update_mask": ""}`, 200, []string{"name"}},
		{"null mask is no mask", "PATCH", "/v1/lessons/l1", `{"objective": "o", "updateMask": null}`, 200, []string{"objective"}},
		{"nothing to change", "PATCH", "/v1/lessons/l1", `{}`, 400, nil},
		{"not JSON: left to the decoder", "PATCH", "/v1/lessons/l1", `{"name": `, 200, nil},
		{"other routes untouched", "PATCH", "/v1/classrooms/c1/detection-settings", `{"sensitivity": 1}`, 200, nil},
		{"other methods untouched", "POST", "/v1/lessons/l1", `{"name": "n"}`, 200, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = io.ReadAll(r.Body)
				if r.ContentLength != int64(len(got)) {
					t.Errorf("Content-Length %d for a %d-byte body", r.ContentLength, len(got))
				}
			})
			rec := httptest.NewRecorder()
			rest.PresentFieldsMask(next).ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				if !strings.Contains(rec.Body.String(), "update_mask") {
					t.Errorf("refusal %s does not name update_mask", rec.Body)
				}
				return
			}
			if tc.wantPaths == nil {
				if string(got) != tc.body {
					t.Errorf("body passed on = %s, want it untouched: %s", got, tc.body)
				}
				return
			}
			var req taskqueuev1.UpdateLessonRequest
			if err := rest.Marshaler().Unmarshal(got, &req); err != nil {
				t.Fatalf("rewritten body %s does not decode: %v", got, err)
			}
			if paths := req.GetUpdateMask().GetPaths(); !slices.Equal(paths, tc.wantPaths) {
				t.Fatalf("update_mask = %v, want %v (body %s)", paths, tc.wantPaths, got)
			}
		})
	}
}
