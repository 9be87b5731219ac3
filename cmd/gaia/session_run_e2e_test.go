package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// gaiaSystem is `gaia up` for a test, with clients of its services.
type gaiaSystem struct {
	up          *upProcess
	coordinator string
	taskqueue   string
	coord       *client.Client
	tasks       taskqueuev1.TaskServiceClient
	lessons     taskqueuev1.LessonServiceClient
}

func startSystem(t *testing.T) *gaiaSystem {
	t.Helper()
	env := append(upEnv(t, t.TempDir()), "SESSION_LEASE_TIMEOUT=1s", "SESSION_HEARTBEAT_INTERVAL=200ms", "TASK_REAP_INTERVAL=100ms")
	p := startUp(t, env)
	ready := p.next(t, 90*time.Second)
	if ready.Event != "ready" {
		t.Fatalf("first event = %+v; logs:\n%s", ready, p.logs())
	}
	t.Cleanup(func() { p.interruptAndWait(t) })
	s := &gaiaSystem{up: p, coordinator: ready.Services["coordinator"].Address, taskqueue: ready.Services["taskqueue"].Address}
	var err error
	admin := readCredential(t, ready, "admin")
	if s.coord, err = client.New(client.Options{Addrs: []string{s.coordinator}, Token: admin}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.coord.Close() })
	conn, err := grpcclient.Dial(s.taskqueue, grpcclient.WithBearer(admin))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.tasks, s.lessons = taskqueuev1.NewTaskServiceClient(conn), taskqueuev1.NewLessonServiceClient(conn)
	return s
}

// worker is one `gaia session run` process.
type worker struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *gaiaSystem) startWorker(t *testing.T, name, coordinator string, extra []string, command ...string) *worker {
	t.Helper()
	args := append([]string{"session", "run", "--name", name, "--provider", "claude", "--coordinator", coordinator, "--taskqueue", s.taskqueue, "--claim-wait", "1s", "--work-dir", t.TempDir()}, extra...)
	args = append(append(args, "--"), command...)
	w := &worker{name: name, cmd: exec.Command(filepath.Join(binaries(t), "gaia"), args...), out: &syncBuffer{}}
	w.cmd.Env = cleanEnv()
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	})
	return w
}

func (s *gaiaSystem) lesson(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	r, err := s.lessons.CreateLesson(ctx, &taskqueuev1.CreateLessonRequest{Project: "e2e", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetLesson().GetLessonId()
}

func (s *gaiaSystem) enqueue(t *testing.T, ctx context.Context, lesson string, n int, payload map[string]any) {
	t.Helper()
	var reqs []*taskqueuev1.EnqueueTaskRequest
	for i := 0; i < n; i++ {
		p := map[string]any{"n": i}
		for k, v := range payload {
			p[k] = v
		}
		st, err := structpb.NewStruct(p)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, &taskqueuev1.EnqueueTaskRequest{IdempotencyKey: fmt.Sprintf("%s/%d", lesson, i), TaskType: "shell", LessonId: lesson, Payload: st, MaxAttempts: 5})
	}
	if _, err := s.tasks.EnqueueTasks(ctx, &taskqueuev1.EnqueueTasksRequest{Tasks: reqs}); err != nil {
		t.Fatal(err)
	}
}

// TestSessionRunWorksLessonsAcrossAKill runs three workers over 300 tasks of
// two lessons and kill -9s one of them in the middle of a task: the others
// finish its tasks, every task completes exactly once, both lessons reach 100 %.
func TestSessionRunWorksLessonsAcrossAKill(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lessons := []string{s.lesson(t, ctx, "fractions"), s.lesson(t, ctx, "decimals")}
	for _, l := range lessons {
		s.enqueue(t, ctx, l, 150, nil)
	}
	audit := filepath.Join(t.TempDir(), "audit.log")
	// Each run appends "task attempt session" (one short write: atomic with O_APPEND).
	script := `echo "$GAIA_TASK_ID $GAIA_ATTEMPT $GAIA_SESSION_NAME" >> ` + audit + `; read -r payload; sleep 0.05; echo "done $payload"`
	var workers []*worker
	for i := 0; i < 3; i++ {
		workers = append(workers, s.startWorker(t, fmt.Sprintf("worker-%d", i), s.coordinator, []string{"--max-tasks", "3", "--quiet"}, "sh", "-c", script))
	}
	victim := workers[0]
	// Kill the victim while it runs a task: once it has claimed a few.
	waitUntil(t, 60*time.Second, "the victim to run tasks", func() bool {
		return strings.Count(victim.out.String(), "claimed") >= 5
	})
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()

	waitUntil(t, 2*time.Minute, "both lessons to reach 100 %", func() bool {
		for _, l := range lessons {
			r, err := s.lessons.GetLesson(ctx, &taskqueuev1.GetLessonRequest{LessonId: l})
			if err != nil || r.GetLesson().GetProgressPercent() != 100 || r.GetLesson().GetTasksTotal() != 150 {
				return false
			}
		}
		return true
	})
	// Every task completed, by a survivor when the victim's claim was lost.
	completedBy := map[string]string{}
	for _, l := range lessons {
		var token string
		for {
			page, err := s.tasks.ListTasks(ctx, &taskqueuev1.ListTasksRequest{LessonId: l, PageSize: 1000, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range page.GetTasks() {
				if task.GetState() != taskqueuev1.TaskState_TASK_STATE_COMPLETED {
					t.Fatalf("task %s is %v", task.GetTaskId(), task.GetState())
				}
				if !strings.HasPrefix(task.GetResult().GetFields()["output"].GetStringValue(), "done ") {
					t.Fatalf("task %s result %v", task.GetTaskId(), task.GetResult())
				}
				completedBy[task.GetTaskId()] = task.GetClaimedBySessionName()
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
	}
	if len(completedBy) != 300 {
		t.Fatalf("%d tasks, want 300", len(completedBy))
	}
	// From the audit: every task ran; runs beyond the first were caused by the
	// victim (its claim was taken back), never by two live workers.
	runs := map[string][]string{}
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("audit line %q", sc.Text())
		}
		runs[fields[0]] = append(runs[fields[0]], fields[1]+"@"+fields[2])
	}
	reran := 0
	for id := range completedBy {
		r := runs[id]
		if len(r) == 0 {
			t.Fatalf("task %s completed but never ran", id)
		}
		if len(r) > 1 {
			reran++
			if !strings.Contains(strings.Join(r, " "), "@"+victim.name) {
				t.Fatalf("task %s ran %v without the victim being involved", id, r)
			}
		}
	}
	if reran == 0 {
		t.Fatalf("no task of the killed worker was taken over; victim output:\n%s", victim.out.String())
	}
	t.Logf("%d tasks were re-run after the kill", reran)
}

// TestSessionRunWaitsForALockAndSeesItsFencingToken: a task naming a lock
// held by another session waits, then runs with the fencing token.
func TestSessionRunWaitsForALockAndSeesItsFencingToken(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	holder, err := s.coord.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "holder", Tier: coordinatorv1.SessionTier_SESSION_TIER_MANAGER, Provider: coordinatorv1.Provider_PROVIDER_OTHER})
	if err != nil {
		t.Fatal(err)
	}
	hb := s.coord.StartHeartbeat(context.Background(), holder.GetSession().GetSessionId(), holder.GetSessionToken(), 200*time.Millisecond, nil)
	defer hb.Stop()
	held, err := s.coord.Locks().AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{Key: "repo:web/src/app.go", SessionId: holder.GetSession().GetSessionId(), SessionToken: holder.GetSessionToken(), Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	lesson := s.lesson(t, ctx, "locked")
	s.enqueue(t, ctx, lesson, 1, map[string]any{"locks": []any{"repo:web/src/app.go"}})
	ran := filepath.Join(t.TempDir(), "ran")
	w := s.startWorker(t, "locker", s.coordinator, nil, "sh", "-c", `echo "$GAIA_FENCING_TOKENS" > `+ran+`; echo "tokens $GAIA_FENCING_TOKENS"`)

	// The worker claims the task and waits for the lock: nothing runs.
	waitUntil(t, 30*time.Second, "the worker to claim the task", func() bool { return strings.Contains(w.out.String(), "claimed") })
	lk, err := s.coord.Locks().GetLock(ctx, &coordinatorv1.GetLockRequest{Key: "repo:web/src/app.go"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the worker to queue for the lock", func() bool {
		lk, err = s.coord.Locks().GetLock(ctx, &coordinatorv1.GetLockRequest{Key: "repo:web/src/app.go"})
		return err == nil && lk.GetLock().GetWaiters() == 1
	})
	if _, err := os.Stat(ran); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the command ran while the lock was held by another session")
	}
	if _, err := s.coord.Locks().ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{Key: "repo:web/src/app.go", SessionId: holder.GetSession().GetSessionId(), SessionToken: holder.GetSessionToken(), FencingToken: held.GetLock().GetFencingToken()}); err != nil {
		t.Fatal(err)
	}
	var got string
	waitUntil(t, 30*time.Second, "the command to run", func() bool {
		b, err := os.ReadFile(ran)
		got = strings.TrimSpace(string(b))
		return err == nil && got != ""
	})
	key, tok, ok := strings.Cut(got, "=")
	n, err := strconv.ParseUint(tok, 10, 64)
	if !ok || key != "repo:web/src/app.go" || err != nil || n <= held.GetLock().GetFencingToken() {
		t.Fatalf("GAIA_FENCING_TOKENS = %q, want repo:web/src/app.go with a token above %d", got, held.GetLock().GetFencingToken())
	}
	// The lock was released after the task.
	waitUntil(t, 10*time.Second, "the lock to be released", func() bool {
		_, err := s.coord.Locks().GetLock(ctx, &coordinatorv1.GetLockRequest{Key: "repo:web/src/app.go"})
		return err != nil
	})
}

// cuttableProxy forwards TCP to a target until Cut, which drops every
// connection and refuses new ones: a network that stops carrying heartbeats.
type cuttableProxy struct {
	lis    net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{lis: l, target: target}
	t.Cleanup(func() { _ = l.Close(); p.Cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				_ = c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				_ = c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

func (p *cuttableProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// TestSessionRunStopsItsChildWhenTheSessionIsLost cuts a worker's heartbeats:
// its session fails, and the running command is killed.
func TestSessionRunStopsItsChildWhenTheSessionIsLost(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lesson := s.lesson(t, ctx, "long")
	s.enqueue(t, ctx, lesson, 1, nil)
	proxy := newCuttableProxy(t, s.coordinator)
	pidFile := filepath.Join(t.TempDir(), "pid")
	w := s.startWorker(t, "cut-off", proxy.lis.Addr().String(), nil, "sh", "-c", `echo $$ > `+pidFile+`; exec sleep 600`)
	var pid int
	waitUntil(t, 30*time.Second, "the command to start", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	proxy.Cut()
	cutAt := time.Now()
	waitUntil(t, 15*time.Second, "the command to be killed", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	t.Logf("command killed %v after the heartbeats were cut (lease 1s)", time.Since(cutAt).Round(10*time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("worker exit = %v, want a failure; output:\n%s", err, w.out.String())
		}
		if !strings.Contains(w.out.String(), "session lost") {
			t.Fatalf("worker did not say why it stopped:\n%s", w.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker still running after losing its session:\n%s", w.out.String())
	}
	// The queue took the task back.
	waitUntil(t, 15*time.Second, "the task to be pending again", func() bool {
		page, err := s.tasks.ListTasks(ctx, &taskqueuev1.ListTasksRequest{LessonId: lesson})
		return err == nil && len(page.GetTasks()) == 1 && page.GetTasks()[0].GetState() == taskqueuev1.TaskState_TASK_STATE_PENDING
	})
}

// TestSessionRunBadInput: each mistake gets a clear message and a non-zero
// exit, and leaves nothing registered.
func TestSessionRunBadInput(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	live, err := s.coord.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "taken", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
	if err != nil {
		t.Fatal(err)
	}
	hb := s.coord.StartHeartbeat(context.Background(), live.GetSession().GetSessionId(), live.GetSessionToken(), 200*time.Millisecond, nil)
	defer hb.Stop()
	gaia := filepath.Join(binaries(t), "gaia")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", []string{"session", "run", "--name", "x", "--provider", "claude", "--coordinator", s.coordinator, "--taskqueue", s.taskqueue}, exitUsage, "no command given"},
		{"nothing after --", []string{"session", "run", "--name", "x", "--provider", "claude", "--coordinator", s.coordinator, "--"}, exitUsage, "no command given"},
		{"unknown flag", []string{"session", "run", "--name", "x", "--provider", "claude", "--frobnicate", "--", "true"}, exitUsage, "frobnicate"},
		{"bad provider", []string{"session", "run", "--name", "x", "--provider", "skynet", "--", "true"}, exitUsage, "provider"},
		{"missing name", []string{"session", "run", "--provider", "claude", "--", "true"}, exitUsage, "name"},
		{"unreachable coordinator", []string{"session", "run", "--name", "x", "--provider", "claude", "--coordinator", "127.0.0.1:1", "--taskqueue", s.taskqueue, "--", "true"}, exitFailure, "cannot reach the coordinator"},
		{"name in use", []string{"session", "run", "--name", "taken", "--provider", "claude", "--coordinator", s.coordinator, "--taskqueue", s.taskqueue, "--", "true"}, exitFailure, "already in use"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(gaia, c.args...)
			cmd.Env = cleanEnv()
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != c.code {
				t.Fatalf("exit = %v, want %d; output:\n%s", err, c.code, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("output does not mention %q:\n%s", c.want, out)
			}
		})
	}
	list, err := s.coord.Sessions().ListSessions(ctx, &coordinatorv1.ListSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The metrics service's frustration detector holds a session of its own
	// (for its partition locks); the bad runs must have left none.
	var agents []*coordinatorv1.Session
	for _, sess := range list.GetSessions() {
		if sess.GetLabels()["service"] != "metrics" {
			agents = append(agents, sess)
		}
	}
	if len(agents) != 1 || agents[0].GetName() != "taken" {
		t.Fatalf("sessions after the bad runs: %v", list.GetSessions())
	}
}
