package service_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/gaia-platform/gaia/internal/openapitest"
	"github.com/gaia-platform/gaia/services/gateway/service"
)

// TestRequestMetricsByRouteTemplate: requests are counted under the REST
// rule's template (bounded labels, whatever the ids), the gateway's own
// endpoints under their pattern, anything else as unmatched; /metrics is
// served apart from the public port.
func TestRequestMetricsByRouteTemplate(t *testing.T) {
	dead := "127.0.0.1:1" // nothing listens: backends answer UNAVAILABLE
	svc, err := service.New(context.Background(), service.Config{
		ListenAddr:      "127.0.0.1:0",
		MetricsAddr:     "127.0.0.1:0",
		ShutdownTimeout: time.Second,
		Backends:        service.Backends{Coordinator: dead, TaskQueue: dead, Metrics: dead, Dashboard: dead},
	}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	client := openapitest.Client(t) // the /v1 answers are checked against the document too
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	public := "http://" + svc.Addr().String()
	get(public + "/healthz")
	get(public + "/v1/tasks/11111111-1111-1111-1111-111111111111")
	get(public + "/v1/tasks/22222222-2222-2222-2222-222222222222")
	if code, _ := get(public + "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the public port answered %d", code)
	}

	code, body := get("http://" + svc.MetricsAddr().String() + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`gaia_gateway_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		`gaia_gateway_requests_total{code="503",method="GET",route="/v1/tasks/{task_id=*}"} 2`,
		`gaia_gateway_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`gaia_gateway_request_duration_seconds_count{method="GET",route="/v1/tasks/{task_id=*}"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "gaia_gateway_requests_total") {
				t.Log(l)
			}
		}
	}
}
