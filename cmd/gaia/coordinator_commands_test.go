package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

var cannedTime = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

func cannedClusterStatus() *coordinatorv1.GetClusterStatusResponse {
	return &coordinatorv1.GetClusterStatusResponse{
		Leader:       &coordinatorv1.LeaderInfo{NodeId: "node-1", RaftAddress: "10.0.0.1:8300", GrpcAddress: "10.0.0.1:7001"},
		Term:         4,
		CommitIndex:  1207,
		AppliedIndex: 1206,
		LastLogIndex: 1207,
		LastSnapshot: &coordinatorv1.Snapshot{Id: "3-1024-1773480000000", Index: 1024, Term: 3, TakenAt: timestamppb.New(cannedTime), SizeBytes: 5 << 20},
		AnsweredBy:   "node-2",
		Sessions:     12,
		Locks:        3,
		Nodes: []*coordinatorv1.Node{
			{NodeId: "node-1", RaftAddress: "10.0.0.1:8300", Suffrage: coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER, State: coordinatorv1.NodeState_NODE_STATE_LEADER},
			{NodeId: "node-2", RaftAddress: "10.0.0.2:8300", Suffrage: coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER, State: coordinatorv1.NodeState_NODE_STATE_FOLLOWER, LastContactAt: timestamppb.New(cannedTime)},
			{NodeId: "node-10", RaftAddress: "10.0.0.10:8300", Suffrage: coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_NONVOTER, State: coordinatorv1.NodeState_NODE_STATE_UNREACHABLE, LastContactAt: timestamppb.New(cannedTime.Add(-time.Minute))},
		},
	}
}

func cannedSessions() []*coordinatorv1.Session {
	return []*coordinatorv1.Session{
		{
			SessionId: "6f1c", Name: "claude_1", Tier: coordinatorv1.SessionTier_SESSION_TIER_HIGH_LEVEL, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
			Status: coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE, CurrentTaskCount: 1, MaxConcurrentTasks: 4, Available: true,
			LastHeartbeatAt: timestamppb.New(cannedTime), Activity: "running\ntests",
		},
		{
			SessionId: "a2", Name: "ollama_worker_12", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_OLLAMA,
			Status: coordinatorv1.SessionStatus_SESSION_STATUS_REGISTERED, MaxConcurrentTasks: 1,
		},
	}
}

func TestRenderClusterStatus(t *testing.T) {
	var out bytes.Buffer
	if err := renderClusterStatus(&out, cannedClusterStatus()); err != nil {
		t.Fatal(err)
	}
	want := `leader:          node-1 raft 10.0.0.1:8300 grpc 10.0.0.1:7001
term:            4
commit index:    1207
applied index:   1206
last log index:  1207
last snapshot:   3-1024-1773480000000 (index 1024, term 3, taken 2026-03-14T09:26:53Z, 5.0 MiB)
sessions:        12
locks:           3
answered by:     node-2

NODE     RAFT ADDRESS    SUFFRAGE  STATE        LAST CONTACT
node-1   10.0.0.1:8300   voter     leader       -
node-2   10.0.0.2:8300   voter     follower     2026-03-14T09:26:53Z
node-10  10.0.0.10:8300  nonvoter  unreachable  2026-03-14T09:25:53Z
`
	if got := out.String(); got != want {
		t.Errorf("renderClusterStatus:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderClusterStatusWithoutLeaderOrSnapshot(t *testing.T) {
	var out bytes.Buffer
	if err := renderClusterStatus(&out, &coordinatorv1.GetClusterStatusResponse{}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"leader:          none\n", "last snapshot:   none\n"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestRenderSessions(t *testing.T) {
	var out bytes.Buffer
	if err := renderSessions(&out, cannedSessions()); err != nil {
		t.Fatal(err)
	}
	want := `ID    NAME              TIER        PROVIDER  STATUS      TASKS  AVAILABLE  LAST HEARTBEAT        ACTIVITY
6f1c  claude_1          high_level  claude    active      1/4    yes        2026-03-14T09:26:53Z  running tests
a2    ollama_worker_12  worker      ollama    registered  0/1    no         -                     -
`
	if got := out.String(); got != want {
		t.Errorf("renderSessions:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	if err := renderSessions(&out, nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "no sessions\n" {
		t.Errorf("renderSessions(nil) = %q", got)
	}
}

func TestRenderSession(t *testing.T) {
	s := cannedSessions()[0]
	s.Labels = map[string]string{"team": "core", "repo": "web"}
	s.TimeWindows = []*typev1.TimeWindow{{Days: []typev1.Weekday{typev1.Weekday_WEEKDAY_MONDAY, typev1.Weekday_WEEKDAY_FRIDAY}, StartMinute: 570, EndMinute: 1020, TimeZone: "Europe/Paris"}, {StartMinute: 0, EndMinute: 1440}}
	var out bytes.Buffer
	if err := renderSession(&out, s); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"tier:            high_level\n",
		"status:          active\n",
		"labels:          repo=web,team=core\n",
		"time windows:    mon,fri 09:30-17:00 Europe/Paris; every day 00:00-24:00 UTC\n",
		"last heartbeat:  2026-03-14T09:26:53Z\n",
		"lease expires:   -\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestRenderLocks(t *testing.T) {
	locks := []*coordinatorv1.Lock{{
		Key: "repo:web/src/app.go", OwnerSessionId: "6f1c", OwnerSessionName: "claude_1", FencingToken: 981,
		AcquiredAt: timestamppb.New(cannedTime), ExpiresAt: timestamppb.New(cannedTime.Add(30 * time.Second)),
		Ttl: durationpb.New(30*time.Second + 4*time.Millisecond), Waiters: 2,
	}}
	var out bytes.Buffer
	if err := renderLocks(&out, locks); err != nil {
		t.Fatal(err)
	}
	want := `KEY                  OWNER  OWNER NAME  FENCING TOKEN  ACQUIRED              EXPIRES               TTL  WAITERS
repo:web/src/app.go  6f1c   claude_1    981            2026-03-14T09:26:53Z  2026-03-14T09:27:23Z  30s  2
`
	if got := out.String(); got != want {
		t.Errorf("renderLocks:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatDurationRounds(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{1234567 * time.Nanosecond, "1ms"},
		{1540 * time.Millisecond, "1.5s"},
		{90*time.Second + 600*time.Millisecond, "1m31s"},
	} {
		if got := formatDuration(durationpb.New(c.in)); got != c.want {
			t.Errorf("formatDuration(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCodeName(t *testing.T) {
	for in, want := range map[codes.Code]string{
		codes.NotFound:           "not_found",
		codes.FailedPrecondition: "failed_precondition",
		codes.Unavailable:        "unavailable",
		codes.DeadlineExceeded:   "deadline_exceeded",
		codes.Canceled:           "canceled",
	} {
		if got := codeName(in.String()); got != want {
			t.Errorf("codeName(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionListFlagsBuildTheRequest(t *testing.T) {
	f := sessionListFlags{
		statuses:  []string{"active", "SUSPECT", "session_status_failed"},
		tier:      "high-level",
		provider:  "Claude",
		available: true,
		labels:    []string{"repo=web", "note=a=b"},
	}
	got, err := f.request()
	if err != nil {
		t.Fatal(err)
	}
	want := &coordinatorv1.ListSessionsRequest{
		Statuses:      []coordinatorv1.SessionStatus{coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE, coordinatorv1.SessionStatus_SESSION_STATUS_SUSPECT, coordinatorv1.SessionStatus_SESSION_STATUS_FAILED},
		Tiers:         []coordinatorv1.SessionTier{coordinatorv1.SessionTier_SESSION_TIER_HIGH_LEVEL},
		Providers:     []coordinatorv1.Provider{coordinatorv1.Provider_PROVIDER_CLAUDE},
		AvailableOnly: true,
		Labels:        map[string]string{"repo": "web", "note": "a=b"},
	}
	if !proto.Equal(got, want) {
		t.Errorf("request = %v, want %v", got, want)
	}
}

func TestCoordinatorCommandsRejectBadUsage(t *testing.T) {
	// Nothing listens here: a usage error must be found before any call.
	const nowhere = "127.0.0.1:1"
	for _, c := range []struct {
		args []string
		want []string // in stderr
	}{
		{[]string{"session", "list", "--tier", "boss"}, []string{`invalid value "boss" for --tier`, "high_level, manager, worker"}},
		{[]string{"session", "list", "--status", "active", "--status", "zombie"}, []string{"--status", "registered, active, suspect, failed, deregistered"}},
		{[]string{"session", "list", "--provider", "gpt"}, []string{"--provider", "claude, codex, ollama, openai, gemini, other"}},
		{[]string{"session", "list", "--tier", "unspecified"}, []string{"--tier"}},
		{[]string{"session", "list", "--label", "novalue"}, []string{"--label", "key=value"}},
		{[]string{"session", "list", "--limit", "-1"}, []string{"--limit"}},
		{[]string{"session", "list", "--limit", "many"}, []string{"--limit"}},
		{[]string{"session", "list", "extra"}, []string{"unknown command"}},
		{[]string{"session", "get"}, []string{"--name"}},
		{[]string{"session", "get", "s-1", "--name", "claude_1"}, []string{"not both"}},
		{[]string{"cluster", "bogus"}, []string{`unknown command "bogus"`}},
		{[]string{"cluster", "join", "--node-id", "node-2"}, []string{"--raft-addr"}},
		{[]string{"cluster", "join", "--node-id", "node-2", "--raft-addr", "nope"}, []string{"--raft-addr", "host:port"}},
		{[]string{"cluster", "remove"}, []string{"accepts 1 arg"}},
		{[]string{"cluster", "transfer", "node-2", "node-3"}, []string{"accepts at most 1 arg"}},
		{[]string{"cluster", "status", "--timeout", "0s"}, []string{"--timeout"}},
		{[]string{"cluster", "status", "--coordinator", "no-port"}, []string{"--coordinator"}},
		{[]string{"lock", "acquire", "k", "--session-id", "s", "--session-token", "t"}, []string{"--ttl"}},
		{[]string{"lock", "acquire", "k", "--session-id", "s", "--session-token", "t", "--ttl", "-1s"}, []string{"--ttl"}},
		{[]string{"lock", "release", "k", "--session-id", "s", "--session-token", "t"}, []string{"--fencing-token"}},
		{[]string{"lock", "list", "--bogus"}, []string{"--bogus"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := c.args
			if !strings.Contains(strings.Join(args, " "), "--coordinator") {
				args = append(args, "--coordinator", nowhere)
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
		})
	}
}

func TestBadCoordinatorAddrFromEnvironmentIsAConfigError(t *testing.T) {
	t.Setenv(coordinatorAddrEnv, "no-port")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"cluster", "status"}, &stdout, &stderr); code != exitBadConfig {
		t.Errorf("exit %d, want %d; stderr: %s", code, exitBadConfig, stderr.String())
	}
	if !strings.Contains(stderr.String(), coordinatorAddrEnv) {
		t.Errorf("stderr %q does not name %s", stderr.String(), coordinatorAddrEnv)
	}
}

// fakeCoordinator serves canned ClusterService and SessionService answers and
// remembers what it was asked.
type fakeCoordinator struct {
	coordinatorv1.UnimplementedClusterServiceServer
	coordinatorv1.UnimplementedSessionServiceServer

	status *coordinatorv1.GetClusterStatusResponse
	pages  []*coordinatorv1.ListSessionsResponse // by page token "", "1", "2", …

	mu        sync.Mutex
	auth      []string
	listCalls []*coordinatorv1.ListSessionsRequest
}

func (f *fakeCoordinator) GetClusterStatus(ctx context.Context, _ *coordinatorv1.GetClusterStatusRequest) (*coordinatorv1.GetClusterStatusResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.auth = md.Get("authorization")
	f.mu.Unlock()
	return f.status, nil
}

func (f *fakeCoordinator) ListSessions(_ context.Context, req *coordinatorv1.ListSessionsRequest) (*coordinatorv1.ListSessionsResponse, error) {
	f.mu.Lock()
	f.listCalls = append(f.listCalls, proto.CloneOf(req))
	f.mu.Unlock()
	return fakePage(f.pages, req.GetPageToken())
}

// fakePage serves canned pages by page token: "" is the first page, "1" the
// second, and so on.
func fakePage[T any](pages []T, token string) (T, error) {
	page := 0
	if token != "" {
		page = int(token[0] - '0')
	}
	if page >= len(pages) {
		var none T
		return none, status.Error(codes.InvalidArgument, "page_token: unknown")
	}
	return pages[page], nil
}

func (f *fakeCoordinator) GetSession(_ context.Context, req *coordinatorv1.GetSessionRequest) (*coordinatorv1.GetSessionResponse, error) {
	return nil, status.Errorf(codes.NotFound, "session %s not found", req.GetSessionId())
}

func startFakeCoordinator(t *testing.T, f *fakeCoordinator) string {
	return startFakeServer(t, func(s *grpc.Server) {
		coordinatorv1.RegisterClusterServiceServer(s, f)
		coordinatorv1.RegisterSessionServiceServer(s, f)
	})
}

// startFakeServer serves the services that register adds on 127.0.0.1:0
// until the test ends, and returns the address.
func startFakeServer(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-served
	})
	return lis.Addr().String()
}

func TestClusterStatusJSONAgainstAFakeCoordinator(t *testing.T) {
	fake := &fakeCoordinator{status: cannedClusterStatus()}
	addr := startFakeCoordinator(t, fake)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"cluster", "status", "--json", "--coordinator", addr, "--token", "s3cret"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("output is not one line: %q", out)
	}
	for _, field := range []string{`"commit_index":"1207"`, `"answered_by":"node-2"`, `"state":"NODE_STATE_LEADER"`} {
		if !strings.Contains(out, field) {
			t.Errorf("output lacks %s: %s", field, out)
		}
	}
	var got coordinatorv1.GetClusterStatusResponse
	if err := protojson.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not the response as JSON: %v", err)
	}
	if !proto.Equal(&got, fake.status) {
		t.Errorf("decoded %v, want %v", &got, fake.status)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.auth) != 1 || fake.auth[0] != "Bearer s3cret" {
		t.Errorf("authorization = %q, want the admin token", fake.auth)
	}
}

func TestSessionListPagesAgainstAFakeCoordinator(t *testing.T) {
	sessions := cannedSessions()
	third := proto.CloneOf(sessions[1])
	third.SessionId, third.Name = "b3", "codex_3"
	fake := &fakeCoordinator{pages: []*coordinatorv1.ListSessionsResponse{
		{Sessions: sessions[:1], NextPageToken: "1"},
		{Sessions: sessions[1:], NextPageToken: "2"},
		{Sessions: []*coordinatorv1.Session{third}},
	}}
	addr := startFakeCoordinator(t, fake)
	// The address comes from the environment this time.
	t.Setenv(coordinatorAddrEnv, addr)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"session", "list", "--status", "active,registered", "--tier", "worker", "--available", "--label", "repo=web"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("want a header and 3 rows, got:\n%s", stdout.String())
	}
	for i, name := range []string{"claude_1", "ollama_worker_12", "codex_3"} {
		if !strings.Contains(lines[i+1], name) {
			t.Errorf("row %d = %q, want %s", i+1, lines[i+1], name)
		}
	}

	fake.mu.Lock()
	calls := fake.listCalls
	fake.listCalls = nil
	fake.mu.Unlock()
	if len(calls) != 3 {
		t.Fatalf("%d ListSessions calls, want 3 (one per page)", len(calls))
	}
	wantFilter := &coordinatorv1.ListSessionsRequest{
		Statuses:      []coordinatorv1.SessionStatus{coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE, coordinatorv1.SessionStatus_SESSION_STATUS_REGISTERED},
		Tiers:         []coordinatorv1.SessionTier{coordinatorv1.SessionTier_SESSION_TIER_WORKER},
		AvailableOnly: true,
		Labels:        map[string]string{"repo": "web"},
		PageSize:      maxPageSize,
	}
	for i, token := range []string{"", "1", "2"} {
		want := proto.CloneOf(wantFilter)
		want.PageToken = token
		if !proto.Equal(calls[i], want) {
			t.Errorf("call %d = %v, want %v", i, calls[i], want)
		}
	}

	// --limit stops paging and asks only for what it still needs.
	stdout.Reset()
	if code := run([]string{"session", "list", "--limit", "2", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	var got coordinatorv1.ListSessionsResponse
	if err := protojson.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("--json output: %v", err)
	}
	if len(got.GetSessions()) != 2 || got.GetSessions()[1].GetName() != "ollama_worker_12" {
		t.Errorf("--limit 2 listed %v", got.GetSessions())
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.listCalls) != 2 || fake.listCalls[0].GetPageSize() != 2 || fake.listCalls[1].GetPageSize() != 1 {
		t.Errorf("with --limit 2 the calls were %v, want page sizes 2 then 1", fake.listCalls)
	}
}

func TestGRPCErrorIsPrintedWithItsCode(t *testing.T) {
	addr := startFakeCoordinator(t, &fakeCoordinator{})
	var stdout, stderr bytes.Buffer
	if code := run([]string{"session", "get", "s-9", "--coordinator", addr}, &stdout, &stderr); code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	if got, want := stderr.String(), "gaia: not_found: session s-9 not found\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}
