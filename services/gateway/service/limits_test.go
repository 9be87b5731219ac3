package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/gaia-platform/gaia/internal/config"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/gateway/service"
)

// startLimitedGateway runs a gateway with the given limits; backends that are
// not given are unreachable.
func startLimitedGateway(t *testing.T, coordinator string, limits service.HTTPLimits) string {
	t.Helper()
	if coordinator == "" {
		coordinator = "127.0.0.1:1"
	}
	gw, err := service.New(context.Background(), service.Config{
		ListenAddr:      "127.0.0.1:0",
		ShutdownTimeout: time.Second,
		HTTP:            limits,
		Backends:        service.Backends{Coordinator: coordinator, TaskQueue: "127.0.0.1:1", Metrics: "127.0.0.1:1", Dashboard: "127.0.0.1:1"},
	}, zaptest.NewLogger(t).Named("gateway"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	return gw.Addr().String()
}

// TestOversizedBodyIsRefusedWith413: the gateway read any body whole (a
// 100 MB POST took it from 28 MB to 488 MB), and the answer was not 413.
// The limit is a setting now, and holds for bodies without a length too.
func TestOversizedBodyIsRefusedWith413(t *testing.T) {
	addr := startLimitedGateway(t, "", service.HTTPLimits{MaxBodyBytes: 1024})
	post := func(body io.Reader, length int64) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/metrics", body)
		req.ContentLength = length // -1: chunked, no length given
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	big := `{"events":[],"pad":"` + strings.Repeat("x", 2000) + `"}`
	for _, tc := range []struct {
		name   string
		length int64
	}{{"with Content-Length", int64(len(big))}, {"chunked", -1}} {
		code, body := post(strings.NewReader(big), tc.length)
		var e struct {
			Error struct {
				Code    int
				Message string
			}
		}
		if code != http.StatusRequestEntityTooLarge || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error.Message, "larger than 1024 bytes") || !strings.Contains(e.Error.Message, "GATEWAY_MAX_BODY_BYTES") {
			t.Errorf("%s: %d %s, want 413 saying the limit and its setting", tc.name, code, body)
		}
	}
	// Under the limit the body reaches the route (whose backend is down).
	if code, body := post(strings.NewReader(`{"events":[]}`), -1); code == http.StatusRequestEntityTooLarge {
		t.Errorf("small chunked body: %d %s", code, body)
	}
}

// TestSlowAndIdleConnectionsAreClosed: 500 idle keep-alive and slow-body
// connections were all still open after 40 s; only the headers had a
// deadline.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	addr := startLimitedGateway(t, "", service.HTTPLimits{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	closedWithin := func(t *testing.T, c net.Conn, d time.Duration) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection still open after %s", d)
		}
	}
	t.Run("slow body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		closedWithin(t, c, 5*time.Second)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		closedWithin(t, c, 5*time.Second)
	})
}

// TestReadTimeoutDoesNotCutStreams: ReadTimeout bounds reading a request,
// but a REST stream's request lasts as long as the stream. Over HTTP/2 the
// heartbeat's body was closed when it passed; the watch over HTTP/1.1 is
// here to keep it that way.
func TestReadTimeoutDoesNotCutStreams(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	addr := startLimitedGateway(t, coord.Addrs()[0], service.HTTPLimits{ReadTimeout: readTimeout})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := coord.Client().Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "beater", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("heartbeat over HTTP/2", func(t *testing.T) {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/sessions:heartbeat", pr)
		req.Header.Set("Content-Type", "application/x-ndjson")
		beat, _ := json.Marshal(map[string]any{"session_id": reg.GetSession().GetSessionId(), "session_token": reg.GetSessionToken()})
		go func() { _, _ = pw.Write(append(beat, '\n')) }()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		for i := range 2 {
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), `{"result":`) {
				t.Fatalf("answer to beat %d: %q, %v", i+1, lines.Text(), lines.Err())
			}
			// Wait past the read timeout, then beat again on the same stream.
			time.Sleep(3 * readTimeout)
			if _, err := pw.Write(append(beat, '\n')); err != nil {
				t.Fatalf("beat %d: %v", i+2, err)
			}
		}
	})

	t.Run("session watch over HTTP/1.1", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/sessions:watch?after_index=0", nil)
		req.Header.Set("Authorization", "Bearer "+coord.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("watch: %d %s", resp.StatusCode, b)
		}
		time.Sleep(3 * readTimeout)
		late, err := coord.Client().Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "late", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
		if err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if strings.Contains(lines.Text(), late.GetSession().GetSessionId()) {
				return
			}
		}
		t.Fatalf("watch ended before the session registered after the read timeout showed up: %v", lines.Err())
	})
}

// TestEveryStreamingRouteIsKnown holds the gateway's list of streaming
// routes (exempt from ReadTimeout, bounded per message) to proto/gateway.yaml.
func TestEveryStreamingRouteIsKnown(t *testing.T) {
	f, err := os.Open("../../../proto/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var selector string
	checked := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if s, ok := strings.CutPrefix(line, "- selector: "); ok {
			selector = s
			continue
		}
		verb, path, ok := strings.Cut(line, ": ")
		if !ok || selector == "" {
			continue
		}
		switch verb {
		case "get", "post", "put", "patch", "delete":
		default:
			continue
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(selector))
		if err != nil {
			t.Fatalf("%s: %v", selector, err)
		}
		m := d.(protoreflect.MethodDescriptor)
		streaming := m.IsStreamingClient() || m.IsStreamingServer()
		if got := service.IsStreamingRoute(path); got != streaming {
			t.Errorf("%s %s (%s): streaming route %v, want %v", verb, path, selector, got, streaming)
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("checked %d routes; is proto/gateway.yaml still read right?", checked)
	}
}

// TestHTTPLimitSettings: the limits are settings, and a bad value is an
// error naming its variable.
func TestHTTPLimitSettings(t *testing.T) {
	l := config.NewLoader(func(name string) (string, bool) {
		v, ok := map[string]string{"GATEWAY_MAX_BODY_BYTES": "1048576", "GATEWAY_READ_TIMEOUT": "2m", "GATEWAY_IDLE_TIMEOUT": "30s"}[name]
		return v, ok
	})
	cfg := service.LoadConfig(l)
	if err := l.Err(); err != nil || cfg.HTTP.MaxBodyBytes != 1<<20 || cfg.HTTP.ReadTimeout != 2*time.Minute || cfg.HTTP.IdleTimeout != 30*time.Second {
		t.Fatalf("limits = %+v, %v", cfg.HTTP, err)
	}
	for name, bad := range map[string]string{"GATEWAY_MAX_BODY_BYTES": "8MB", "GATEWAY_READ_TIMEOUT": "0s", "GATEWAY_IDLE_TIMEOUT": "soon"} {
		l := config.NewLoader(func(n string) (string, bool) {
			if n == name {
				return bad, true
			}
			return "", false
		})
		service.LoadConfig(l)
		if err := l.Err(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v, want an error naming it", name, bad, err)
		}
	}
}
