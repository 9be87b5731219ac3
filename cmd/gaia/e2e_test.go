package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/openapitest"
	"github.com/gaia-platform/gaia/internal/pgtest"
)

// buildBinaries compiles the given packages (relative to the module root) once
// per test binary and returns their paths by base name.
var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "gaia-e2e-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"./cmd/gaia", "./services/coordinator", "./services/taskqueue", "./services/metrics", "./services/dashboard", "./services/gateway"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(builtDir, filepath.Base(pkg)), pkg)
			cmd.Dir = filepath.Join("..", "..")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.New("go build " + pkg + ": " + err.Error() + "\n" + string(out))
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// cleanEnv is the test process's environment without any GAIA variable, so
// that a developer's shell cannot change what the test sees.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "CLUSTER_"), strings.HasPrefix(name, "RAFT_"), strings.HasPrefix(name, "SESSION_"), strings.HasPrefix(name, "TLS_"),
			strings.HasPrefix(name, "TASK_"), strings.HasSuffix(name, "_LISTEN_ADDR"), strings.HasSuffix(name, "_ADDR"),
			strings.HasSuffix(name, "_ENABLED"), name == "DATABASE_URL", name == "LOG_LEVEL", name == "LOG_FORMAT", name == "SHUTDOWN_TIMEOUT",
			strings.HasPrefix(name, "AUTH_"), name == "GAIA_AUTH", name == "GAIA_TOKEN":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

type upProcess struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

func startUp(t *testing.T, env []string, flags ...string) *upProcess {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "gaia"), append([]string{"up", "--json"}, flags...)...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, lines: make(chan string, 16), stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stderr = lockedWriter{p.mu, p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *upProcess) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// next waits for the next JSON event on stdout.
func (p *upProcess) next(t *testing.T, timeout time.Duration) upReport {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			t.Fatalf("gaia up closed its output; logs:\n%s", p.logs())
		}
		var r upReport
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("gaia up printed %q, not JSON: %v", line, err)
		}
		return r
	case <-time.After(timeout):
		t.Fatalf("no event from gaia up within %s; logs:\n%s", timeout, p.logs())
	}
	return upReport{}
}

func (p *upProcess) interruptAndWait(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stopped := p.next(t, 30*time.Second)
	if stopped.Event != "stopped" || stopped.Error != "" {
		t.Fatalf("after Ctrl-C gaia up reported %+v; logs:\n%s", stopped, p.logs())
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gaia up exited with %v after Ctrl-C; logs:\n%s", err, p.logs())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("gaia up did not exit within 30s of Ctrl-C; logs:\n%s", p.logs())
	}
}

// upEnv is the environment of a `gaia up` with its Raft data in dataDir. Its
// credentials go beside it (auth/), and the test's own in-process CLI looks
// for them there, as the CLI on the machine running `gaia up` does by itself.
func upEnv(t *testing.T, dataDir string) []string {
	t.Setenv(authDirEnv, filepath.Join(filepath.Dir(dataDir), "auth"))
	return cleanEnv(
		"DATABASE_URL="+pgtest.NewDatabase(t),
		"CLUSTER_DATA_DIR="+dataDir,
		"CLUSTER_BIND_ADDR=127.0.0.1:0",
		"COORDINATOR_LISTEN_ADDR=127.0.0.1:0",
		"TASKQUEUE_LISTEN_ADDR=127.0.0.1:0",
		"TASKQUEUE_PROMETHEUS_LISTEN_ADDR=127.0.0.1:0",
		"METRICS_LISTEN_ADDR=127.0.0.1:0",
		"METRICS_PROMETHEUS_LISTEN_ADDR=127.0.0.1:0",
		"DASHBOARD_LISTEN_ADDR=127.0.0.1:0",
		"DASHBOARD_PROMETHEUS_LISTEN_ADDR=127.0.0.1:0",
		"GATEWAY_LISTEN_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
		"LOG_LEVEL=warn",
	)
}

// TestUpServesEverything is what a new user does after `make run`: every service
// answers health and reflection, the gateway answers REST, and Ctrl-C stops all.
func TestUpServesEverything(t *testing.T) {
	dataDir := t.TempDir()
	env := upEnv(t, dataDir)
	p := startUp(t, env)
	ready := p.next(t, 90*time.Second)
	if ready.Event != "ready" {
		t.Fatalf("first event = %+v, want ready; logs:\n%s", ready, p.logs())
	}

	wantServices := map[string][]string{
		"coordinator": {"gaia.coordinator.v1.SessionService", "gaia.coordinator.v1.LockService", "gaia.coordinator.v1.ClusterService", "gaia.coordinator.v1.AuthService"},
		"taskqueue":   {"gaia.taskqueue.v1.TaskService", "gaia.taskqueue.v1.LessonService"},
		"metrics":     {"gaia.metrics.v1.MetricsService"},
		"dashboard":   {"gaia.dashboard.v1.DashboardService"},
		"gateway":     {},
	}
	for name, services := range wantServices {
		svc, ok := ready.Services[name]
		if !ok {
			t.Fatalf("ready event lacks %s: %+v", name, ready)
		}
		conn, err := grpcclient.Dial(svc.Address)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		assertServing(t, name, conn)
		listed := listServices(t, name, conn)
		for _, want := range append(services, "grpc.health.v1.Health") {
			if !listed[want] {
				t.Errorf("%s reflection does not list %s; it lists %v", name, want, listed)
			}
		}
	}

	gw := "http://" + ready.Services["gateway"].Address
	body := httpGet(t, gw+"/healthz", http.StatusOK)
	if !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %q", body)
	}
	body = httpGet(t, gw+"/readyz", http.StatusOK)
	var readyz struct {
		Ready    bool              `json:"ready"`
		Backends map[string]string `json:"backends"`
	}
	if err := json.Unmarshal([]byte(body), &readyz); err != nil || !readyz.Ready || len(readyz.Backends) != 4 {
		t.Errorf("/readyz = %s (err %v), want ready with 4 backends", body, err)
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
		Info    struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, gw+"/openapi.json", http.StatusOK)), &doc); err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Version == "" || doc.Info.Version == "0.0.0-dev" {
		t.Errorf("/openapi.json: openapi %q, info.version %q; want OpenAPI 3 stamped with the build's version", doc.OpenAPI, doc.Info.Version)
	}
	if page := httpGet(t, gw+"/docs/", http.StatusOK); !strings.Contains(page, "swagger-ui-bundle.js") {
		t.Errorf("/docs/ is not the API reference page: %.200s", page)
	}
	if js := httpGet(t, gw+"/docs/swagger-ui-bundle.js", http.StatusOK); len(js) < 100000 {
		t.Errorf("/docs/swagger-ui-bundle.js is %d bytes, want the embedded bundle", len(js))
	}
	for _, route := range []string{"/v1/sessions", "/v1/locks", "/v1/cluster/status", "/v1/tasks", "/v1/lessons", "/v1/metrics", "/v1/ratings", "/v1/alerts/{alert_id}:acknowledge", "/v1/teachers/{teacher_id}/alerts:subscribe"} {
		if _, ok := doc.Paths[route]; !ok {
			t.Errorf("/openapi.json lacks %s", route)
		}
	}
	// The teacher page and its assets are served, with no network needed.
	if page := httpGet(t, gw+"/classrooms/room-1?teacher=t1", http.StatusOK); !strings.Contains(page, "teacher dashboard") || !strings.Contains(page, "/ui/app.js") {
		t.Errorf("/classrooms/room-1 is not the teacher page: %.200s", page)
	}
	if js := httpGet(t, gw+"/ui/app.js", http.StatusOK); !strings.Contains(js, "alerts:subscribe") {
		t.Errorf("/ui/app.js is not the teacher page's script: %.200s", js)
	}
	// Secure by default: without a credential the API answers 401, with the
	// demo teacher's 403, with the printed admin one it answers.
	admin, teacher := readCredential(t, ready, "admin"), readCredential(t, ready, "teacher")
	httpGetAs(t, "", gw+"/v1/cluster/status", http.StatusUnauthorized)
	httpGetAs(t, teacher, gw+"/v1/cluster/status", http.StatusForbidden)
	// The demo teacher sees its own classrooms (demo-classroom, assigned on
	// first start), not another teacher's; the demo app sees neither.
	app := readCredential(t, ready, "app")
	if got := httpGetAs(t, teacher, gw+"/v1/teachers/demo-teacher/classrooms", http.StatusOK); !strings.Contains(got, "demo-classroom") {
		t.Errorf("the demo teacher's classrooms = %s, want demo-classroom", got)
	}
	httpGetAs(t, teacher, gw+"/v1/teachers/someone-else/classrooms", http.StatusForbidden)
	httpGetAs(t, app, gw+"/v1/teachers/demo-teacher/classrooms", http.StatusForbidden)
	// The metrics service asks the dashboard which classrooms the teacher
	// has: the teacher page's snapshots of its classroom, not another's.
	httpGetAs(t, teacher, gw+"/v1/classrooms/demo-classroom/snapshots", http.StatusOK)
	httpGetAs(t, teacher, gw+"/v1/classrooms/someone-elses-room/snapshots", http.StatusForbidden)
	// The single-node Raft has elected itself.
	status := httpGetAs(t, admin, gw+"/v1/cluster/status", http.StatusOK)
	if !strings.Contains(status, `"NODE_STATE_LEADER"`) || !strings.Contains(status, `"NODE_SUFFRAGE_VOTER"`) {
		t.Errorf("/v1/cluster/status = %s, want this node as leader and voter", status)
	}
	// The detector's history answers through the REST path (empty so far).
	if got := httpGetAs(t, admin, gw+"/v1/frustration-events", http.StatusOK); !strings.Contains(got, `"events"`) {
		t.Errorf("GET /v1/frustration-events = %s, want a list of events", got)
	}

	p.interruptAndWait(t)

	// A second start on the same data folder keeps the node's Raft state and
	// elects it again (bootstrap is harmless on restart).
	p = startUp(t, env)
	ready = p.next(t, 90*time.Second)
	if ready.Event != "ready" {
		t.Fatalf("restart: first event = %+v; logs:\n%s", ready, p.logs())
	}
	// The credentials of the first start are kept and still work.
	if got := readCredential(t, ready, "admin"); got != admin {
		t.Errorf("the admin credential changed across a restart")
	}
	status = httpGetAs(t, admin, "http://"+ready.Services["gateway"].Address+"/v1/cluster/status", http.StatusOK)
	if !strings.Contains(status, `"NODE_STATE_LEADER"`) {
		t.Errorf("after restart /v1/cluster/status = %s, want a leader", status)
	}
	// Even without --tls the Raft port is mutual TLS with a CA only the node
	// holds: issue 9's forged AppendEntries fails.
	raftAddr := regexp.MustCompile(`Raft (\S+),`).FindStringSubmatch(ready.Services["coordinator"].Detail)
	if raftAddr == nil {
		t.Fatalf("no Raft address in %q", ready.Services["coordinator"].Detail)
	}
	assertRaftRefusesStrangers(t, raftAddr[1])
	p.interruptAndWait(t)
}

func assertServing(t *testing.T, name string, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("%s health = %v, %v; want SERVING", name, resp.GetStatus(), err)
	}
}

func listServices(t *testing.T, name string, conn *grpc.ClientConn) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("%s reflection: %v", name, err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatalf("%s reflection: %v", name, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("%s reflection: %v", name, err)
	}
	listed := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		listed[s.GetName()] = true
	}
	return listed
}

// httpGet fetches a URL through a client that checks the exchange against
// the OpenAPI document (/v1 routes).
func httpGet(t *testing.T, url string, wantStatus int) string {
	t.Helper()
	resp, err := openapitest.Client(t).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != wantStatus {
		t.Errorf("GET %s = %d %s, want %d", url, resp.StatusCode, b, wantStatus)
	}
	return string(b)
}

// httpGetAs is httpGet presenting token; with "" it presents none, which
// the document forbids on secured routes, so only the answer is checked.
func httpGetAs(t *testing.T, token, url string, wantStatus int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := openapitest.ClientForBadRequests(t)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		client = openapitest.Client(t)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Errorf("GET %s = %d %s, want %d", url, resp.StatusCode, body, wantStatus)
	}
	return string(body)
}

// readCredential reads the local credential `gaia up` reported for role.
func readCredential(t *testing.T, ready upReport, role string) string {
	t.Helper()
	file, ok := ready.Credentials[role]
	if !ok {
		t.Fatalf("the ready event names no %s credential: %+v", role, ready.Credentials)
	}
	tok, err := readTokenFile(file)
	if err != nil || tok == "" {
		t.Fatalf("read %s: %q, %v", file, tok, err)
	}
	return tok
}

// httpGetQuietAs is httpGetQuiet presenting token.
func httpGetQuietAs(t *testing.T, token, url string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := openapitest.Client(t).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	return string(b), err
}

// TestUpWithoutPostgreSQL says what to do instead of hanging or crashing.
func TestUpWithoutPostgreSQL(t *testing.T) {
	cmd := exec.Command(filepath.Join(binaries(t), "gaia"), "up")
	cmd.Env = cleanEnv("DATABASE_URL=postgres://postgres@127.0.0.1:1/gaia?sslmode=disable&connect_timeout=2", "CLUSTER_DATA_DIR="+t.TempDir(), authDirEnv+"="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
		t.Fatalf("gaia up without PostgreSQL: err = %v, want exit %d; stderr:\n%s", err, exitFailure, stderr.String())
	}
	for _, want := range []string{"127.0.0.1:1", "DATABASE_URL", "not reachable"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestBadConfigurationStopsStartUp: every binary refuses bad configuration with
// exit code 2 and one line naming the variable and what was expected.
func TestBadConfigurationStopsStartUp(t *testing.T) {
	dir := binaries(t)
	cases := []struct {
		binary string
		args   []string
		env    string
		want   string
	}{
		{"coordinator", nil, "CLUSTER_BIND_ADDR=not-an-address", "CLUSTER_BIND_ADDR"},
		{"coordinator", nil, "RAFT_HEARTBEAT_TIMEOUT=-5s", "RAFT_HEARTBEAT_TIMEOUT"},
		{"coordinator", nil, "SESSION_LEASE_TIMEOUT=soon", "SESSION_LEASE_TIMEOUT"},
		{"coordinator", nil, "RAFT_SNAPSHOT_RETAIN=0", "RAFT_SNAPSHOT_RETAIN"},
		{"coordinator", nil, "CLUSTER_ENABLED=perhaps", "CLUSTER_ENABLED"},
		{"coordinator", nil, "CLUSTER_ENABLED=true", "CLUSTER_TLS_CERT_FILE"}, // the Raft port needs a member certificate
		{"gateway", nil, "TLS_CERT_FILE=/nonexistent/gateway.crt", "TLS_KEY_FILE"},
		{"taskqueue", nil, "TASK_MAX_RETRIES=-1", "TASK_MAX_RETRIES"},
		{"taskqueue", nil, "TASK_CLAIM_TIMEOUT=0s", "TASK_CLAIM_TIMEOUT"},
		{"taskqueue", nil, "DATABASE_URL=mysql://x", "DATABASE_URL"},
		{"metrics", nil, "USABILITY_METRICS_ENABLED=maybe", "USABILITY_METRICS_ENABLED"},
		{"metrics", nil, "METRICS_LISTEN_ADDR=:99999", "METRICS_LISTEN_ADDR"},
		{"dashboard", nil, "TEACHER_DASHBOARD_ENABLED=2", "TEACHER_DASHBOARD_ENABLED"},
		{"gateway", nil, "COORDINATOR_ADDR=:7001", "COORDINATOR_ADDR"},
		{"gateway", nil, "LOG_LEVEL=loud", "LOG_LEVEL"},
		{"gaia", []string{"up"}, "SESSION_HEARTBEAT_INTERVAL=1m", "SESSION_HEARTBEAT_INTERVAL"},
		{"gaia", []string{"migrate"}, "DATABASE_URL=::not a url::", "DATABASE_URL"},
		{"coordinator", nil, "CLUSTER_ADMIN_TOKEN=s3cret", "CLUSTER_ADMIN_TOKEN"},
		{"taskqueue", nil, "GAIA_AUTH=maybe", "GAIA_AUTH"},
	}
	for _, c := range cases {
		t.Run(c.binary+"/"+c.want, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(dir, c.binary), c.args...)
			cmd.Env = cleanEnv(c.env, "CLUSTER_DATA_DIR="+t.TempDir(), authDirEnv+"="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("err = %v, want exit code 2; stderr:\n%s", err, stderr.String())
			}
			msg := strings.TrimRight(stderr.String(), "\n")
			if strings.Contains(msg, "\n") {
				t.Errorf("message spans several lines:\n%s", msg)
			}
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, "expected") {
				t.Errorf("message %q does not name %s and what was expected", msg, c.want)
			}
		})
	}
}
