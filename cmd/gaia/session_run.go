package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/gaia-platform/gaia/agent"
	"github.com/gaia-platform/gaia/internal/logging"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// Where `gaia session run` finds the task queue when not told.
const (
	taskQueueAddrEnvRun = "TASKQUEUE_ADDR"
	joinSecretEnv       = "CLUSTER_JOIN_SECRET"
)

// maxEnvPayload bounds GAIA_PAYLOAD: Linux refuses longer environment
// strings, and stdin always carries the whole payload.
const maxEnvPayload = 64 << 10

// outputTail is how much of a command's output becomes the task's result.
const outputTail = 4 << 10

type sessionRunFlags struct {
	name, tier, provider string
	maxTasks             int
	taskTypes            []string
	labels               []string
	windows              []string
	taskqueue            addrFlag
	joinSecret           string
	claimWait, grace     time.Duration
	lockTTL, lockWait    time.Duration
	workDir              string
	keepWorkDirs         bool
	onFailure            string
	quiet                bool
}

func newSessionRunCommand(f *coordinatorFlags) *cobra.Command {
	o := sessionRunFlags{taskqueue: addrFlag{flag: "taskqueue", env: taskQueueAddrEnvRun, def: defaultTaskQueueAddr}}
	cmd := &cobra.Command{
		Use:   "run --name NAME --tier TIER --provider PROVIDER [flags] -- COMMAND [ARGS...]",
		Short: "Turn a command into a coordinated agent session that works tasks",
		Long: `Registers a session, keeps its heartbeat up, claims tasks up to --max-tasks and runs
COMMAND once per task, in a working directory of its own, with the task's payload on
stdin and in the environment:

  GAIA_TASK_ID GAIA_TASK_TYPE GAIA_LESSON_ID GAIA_CLAIM_TOKEN GAIA_ATTEMPT
  GAIA_MAX_ATTEMPTS GAIA_SESSION_ID GAIA_SESSION_NAME GAIA_WORK_DIR
  GAIA_PAYLOAD (when at most 64 KiB)
  GAIA_LOCKS (JSON [{"key","fencing_token"}]) GAIA_FENCING_TOKENS (key=token,...)

A payload with a "locks" list of keys gets those locks (in key order, with
fencing tokens) before the command runs; they are released after. The claim and
the locks are kept alive while the command runs. Exit status 0 completes the task
with {"exit_code", "output"} (the output's last 4 KiB, cut on a character boundary,
invalid UTF-8 and NUL bytes shown as U+FFFD); another status fails it,
retryable unless --on-failure dead. When the claim or the session is lost the
command's whole process group is killed at once. SIGINT/SIGTERM stop claiming,
give running commands --grace to finish, then deregister the session.

The commands' output is echoed line by line, each line prefixed with its task,
unless --quiet. With --json every line on stdout is one JSON object: the
worker's events, and each output line as {"event":"output","task_id",
"attempt","line"}.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() < 0 || len(args) == 0 || cmd.ArgsLenAtDash() != 0 {
				return usageError{errors.New("no command given: put the command to run after --, as in: gaia session run --name w1 --tier worker --provider claude -- ./do-task.sh")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runSession(cmd, f, o, args) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.name, "name", "", "session name, unique among live sessions (required)")
	fs.StringVar(&o.tier, "tier", "worker", "session tier: "+strings.Join(enumShortNames(coordinatorv1.SessionTier(0).Descriptor()), ", "))
	fs.StringVar(&o.provider, "provider", "", "model provider: "+strings.Join(enumShortNames(coordinatorv1.Provider(0).Descriptor()), ", ")+" (required)")
	fs.IntVar(&o.maxTasks, "max-tasks", 1, "tasks to run at once (1-1000)")
	fs.StringArrayVar(&o.taskTypes, "task-type", nil, "claim only tasks of this type (repeatable)")
	fs.StringArrayVar(&o.labels, "label", nil, "session label key=value (repeatable)")
	fs.StringArrayVar(&o.windows, "window", nil, "take work only inside this weekly window, such as 'mon-fri 09:00-17:00 Europe/Paris' (repeatable)")
	o.taskqueue.register(fs, "task queue gRPC address, host:port")
	fs.StringVar(&o.joinSecret, "join-secret", "", "cluster join secret (default $"+joinSecretEnv+")")
	fs.DurationVar(&o.claimWait, "claim-wait", 10*time.Second, "how long one claim long-polls for work")
	fs.DurationVar(&o.grace, "grace", 30*time.Second, "on SIGINT/SIGTERM, how long running commands may go on")
	fs.DurationVar(&o.lockTTL, "lock-ttl", 30*time.Second, "TTL of the locks a task names (renewed while it runs)")
	fs.DurationVar(&o.lockWait, "lock-wait", 5*time.Minute, "how long to wait for each lock a task names")
	fs.StringVar(&o.workDir, "work-dir", filepath.Join(os.TempDir(), "gaia-work"), "where each task's working directory is made")
	fs.BoolVar(&o.keepWorkDirs, "keep-work-dirs", false, "keep each task's working directory after it ends")
	fs.StringVar(&o.onFailure, "on-failure", "retry", "what a non-zero exit does: retry (a retryable failure) or dead (no retry)")
	fs.BoolVar(&o.quiet, "quiet", false, "do not echo the commands' output")
	return cmd
}

func runSession(cmd *cobra.Command, f *coordinatorFlags, o sessionRunFlags, argv []string) error {
	if err := requireFlags(cmd, "name", "provider"); err != nil {
		return err
	}
	req := &coordinatorv1.RegisterSessionRequest{Name: o.name, Labels: map[string]string{}}
	tier, err := parseEnum("tier", o.tier, coordinatorv1.SessionTier(0).Descriptor())
	if err != nil {
		return err
	}
	provider, err := parseEnum("provider", o.provider, coordinatorv1.Provider(0).Descriptor())
	if err != nil {
		return err
	}
	req.Tier, req.Provider = coordinatorv1.SessionTier(tier), coordinatorv1.Provider(provider)
	if err := checkIntRange("max-tasks", o.maxTasks, 1, 1000); err != nil {
		return err
	}
	req.MaxConcurrentTasks = int32(o.maxTasks)
	for _, kv := range o.labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--label %q: want key=value", kv)}
		}
		req.Labels[k] = v
	}
	for _, s := range o.windows {
		w, err := parseTimeWindow(s)
		if err != nil {
			return usageError{fmt.Errorf("--window %q: %w", s, err)}
		}
		req.TimeWindows = append(req.TimeWindows, w)
	}
	switch o.onFailure {
	case "retry", "dead":
	default:
		return usageError{fmt.Errorf("--on-failure %q: want retry or dead", o.onFailure)}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"claim-wait", o.claimWait}, {"grace", o.grace}, {"lock-ttl", o.lockTTL}, {"lock-wait", o.lockWait}} {
		if d.v <= 0 {
			return usageError{fmt.Errorf("--%s must be positive, got %v", d.flag, d.v)}
		}
	}
	coordAddrs, badCoord := f.addrList(cmd)
	for _, a := range coordAddrs {
		if checkHostPort("coordinator", a) != nil {
			return badCoord
		}
	}
	queueAddr, badQueue := o.taskqueue.resolve(cmd, "host:port")
	if checkHostPort("taskqueue", queueAddr) != nil {
		return badQueue
	}
	req.JoinSecret = o.joinSecret
	if !cmd.Flags().Changed("join-secret") {
		req.JoinSecret = os.Getenv(joinSecretEnv)
	}
	if err := os.MkdirAll(o.workDir, 0o750); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	log, err := logging.New("warn", "console")
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &syncWriter{w: cmd.OutOrStdout()}
	h := &commandHandler{argv: argv, workDir: o.workDir, keep: o.keepWorkDirs, dead: o.onFailure == "dead", out: out, quiet: o.quiet, json: f.json}
	events := func(e agent.Event) { printEvent(out, f.json, o.name, e) }
	dialOpts, err := cliDialOptions()
	if err != nil {
		return err
	}
	err = agent.Run(ctx, agent.Config{
		DialOptions: dialOpts,
		Coordinator: coordAddrs,
		TaskQueue:   queueAddr,
		Session:     req,
		TaskTypes:   o.taskTypes,
		ClaimWait:   o.claimWait,
		GracePeriod: o.grace,
		LockTTL:     o.lockTTL,
		LockWait:    o.lockWait,
		Logger:      log,
	}, h.run, events)
	_ = log.Sync()
	return err
}

// printEvent shows what the worker does: a line for people, or JSON.
func printEvent(w io.Writer, asJSON bool, name string, e agent.Event) {
	if asJSON {
		_ = writeJSON(w, e)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %-12s", e.Time.Format("15:04:05"), name, e.Kind)
	if e.TaskID != "" {
		fmt.Fprintf(&b, " task %s attempt %d", e.TaskID, e.Attempt)
	}
	if e.Detail != "" {
		b.WriteString(" " + e.Detail)
	}
	fmt.Fprintln(w, b.String())
}

// commandHandler runs the user's command for one task.
type commandHandler struct {
	argv    []string
	workDir string
	keep    bool
	dead    bool
	quiet   bool
	json    bool // output lines become "output" events, so that stdout stays JSON lines
	out     *syncWriter
}

func (h *commandHandler) run(ctx context.Context, t *agent.Task) (map[string]any, error) {
	dir := filepath.Join(h.workDir, t.SessionName, fmt.Sprintf("%s-%d", t.ID, t.Attempt))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("task directory: %w", err)
	}
	if !h.keep {
		defer os.RemoveAll(dir)
	}
	locks, _ := json.Marshal(t.Locks)
	if t.Locks == nil {
		locks = []byte("[]")
	}
	var fencing []string
	for _, l := range t.Locks {
		fencing = append(fencing, l.Key+"="+strconv.FormatUint(l.FencingToken, 10))
	}
	cmd := exec.Command(h.argv[0], h.argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(t.Payload)
	cmd.Env = append(os.Environ(),
		"GAIA_TASK_ID="+t.ID,
		"GAIA_TASK_TYPE="+t.Type,
		"GAIA_LESSON_ID="+t.LessonID,
		"GAIA_CLAIM_TOKEN="+t.ClaimToken,
		"GAIA_ATTEMPT="+strconv.Itoa(t.Attempt),
		"GAIA_MAX_ATTEMPTS="+strconv.Itoa(t.MaxAttempts),
		"GAIA_SESSION_ID="+t.SessionID,
		"GAIA_SESSION_NAME="+t.SessionName,
		"GAIA_WORK_DIR="+dir,
		"GAIA_LOCKS="+string(locks),
		"GAIA_FENCING_TOKENS="+strings.Join(fencing, ","),
	)
	if len(t.Payload) <= maxEnvPayload {
		cmd.Env = append(cmd.Env, "GAIA_PAYLOAD="+string(t.Payload))
	}
	// Its own process group, so that the whole tree can be stopped at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	tail := &tailBuffer{max: outputTail}
	var sink io.Writer = tail
	if !h.quiet {
		lines := &lineWriter{emit: h.echo(t)}
		defer lines.Flush()
		sink = io.MultiWriter(tail, lines)
	}
	cmd.Stdout, cmd.Stderr = sink, sink
	if err := cmd.Start(); err != nil {
		return nil, agent.Permanent(fmt.Errorf("start %s: %w", h.argv[0], err))
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		// The claim, a lock or the session is gone, or the grace period is
		// over: the task must not go on.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return nil, context.Cause(ctx)
	}
	code := cmd.ProcessState.ExitCode()
	if waitErr == nil {
		return map[string]any{"exit_code": code, "output": tail.String()}, nil
	}
	err := fmt.Errorf("command exited with status %d: %s", code, lastLine(tail.String()))
	if h.dead {
		return nil, agent.Permanent(err)
	}
	return nil, err
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 512 {
		s = safeText([]byte(s[len(s)-512:]))
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String is the tail as text a task result can hold whatever bytes the
// command printed: it starts on a character boundary, invalid bytes become
// U+FFFD, and so do NUL bytes, which PostgreSQL's jsonb refuses.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return safeText(t.buf)
}

// safeText turns a tail of output into valid UTF-8 without NUL. A tail cut
// inside a character starts with up to three continuation bytes: they are
// dropped rather than shown as a replacement character.
func safeText(b []byte) string {
	for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
		b = b[1:]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// syncWriter serialises writes from several tasks and the event printer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *syncWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// outputEvent is one line of a command's output under --json.
type outputEvent struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"event"` // always "output"
	TaskID  string    `json:"task_id"`
	Attempt int       `json:"attempt"`
	Line    string    `json:"line"`
}

// echo shows one line of a task's output: prefixed with the task for
// people, or as an "output" event under --json, so that every line on
// stdout is one JSON object whatever the command prints.
func (h *commandHandler) echo(t *agent.Task) func(line []byte) {
	if h.json {
		return func(line []byte) {
			_ = writeJSON(h.out, outputEvent{Time: time.Now(), Kind: "output", TaskID: t.ID, Attempt: t.Attempt, Line: safeText(bytes.TrimSuffix(line, []byte("\n")))})
		}
	}
	prefix := "[" + short(t.ID) + "] "
	return func(line []byte) {
		b := append([]byte(prefix), line...)
		if !bytes.HasSuffix(b, []byte("\n")) {
			b = append(b, '\n')
		}
		_, _ = h.out.Write(b)
	}
}

// maxEchoLine bounds a line of output held before it is shown, so that a
// command printing without newlines cannot grow the buffer without end.
const maxEchoLine = 64 << 10

// lineWriter hands whole lines to emit; a longer line is handed on in
// pieces of maxEchoLine bytes.
type lineWriter struct {
	emit    func(line []byte)
	partial []byte
}

func (p *lineWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.emit(p.partial[:i+1])
		p.partial = p.partial[i+1:]
	}
	for len(p.partial) >= maxEchoLine {
		p.emit(p.partial[:maxEchoLine])
		p.partial = p.partial[maxEchoLine:]
	}
	return len(b), nil
}

// Flush hands on what is left after the command ended without a newline.
func (p *lineWriter) Flush() {
	if len(p.partial) > 0 {
		p.emit(p.partial)
		p.partial = nil
	}
}
