package service_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/gateway/service"
)

// TestInvalidUTF8AndNULOverRESTAre400: "%ff%fe" in a query string came back
// as 500 with the gRPC client's marshalling error as its text, and "\u0000"
// in a JSON body went through to the backend's store. Both are 400 now,
// naming the parameter or field, with nothing of the gateway's insides.
func TestInvalidUTF8AndNULOverRESTAre400(t *testing.T) {
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	addr := startLimitedGateway(t, coord.Addrs()[0], service.HTTPLimits{})
	do := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, method, path, body, names string
	}{
		{"query string", http.MethodGet, "/v1/sessions?label_selector=%ff%fe", "", "label_selector"},
		{"query string, second value", http.MethodGet, "/v1/sessions?label_selector=a%3Db&page_token=%c3", "", "page_token"},
		{"path", http.MethodGet, "/v1/sessions/%ff%fe", "", "path"},
		{"NUL in a JSON body", http.MethodPost, "/v1/sessions", `{"name":"w","tier":"SESSION_TIER_WORKER","provider":"PROVIDER_CLAUDE","labels":{"team":"a\u0000b"}}`, "labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.path, tc.body)
			var e struct {
				Error struct {
					Code    int
					Message string
				}
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("%d %q: not the REST error shape: %v", code, body, err)
			}
			if code != http.StatusBadRequest || e.Error.Code != 3 || !strings.Contains(e.Error.Message, tc.names) {
				t.Fatalf("got %d %q, want 400 INVALID_ARGUMENT naming %s", code, body, tc.names)
			}
			for _, leak := range []string{"grpc", "marshal", "proto:"} {
				if strings.Contains(strings.ToLower(e.Error.Message), leak) {
					t.Errorf("message %q shows internal error text (%q)", e.Error.Message, leak)
				}
			}
		})
	}
}
