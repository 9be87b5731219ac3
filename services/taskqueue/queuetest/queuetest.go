// Package queuetest runs a real taskqueue service inside a test process, on
// a PostgreSQL database of the test's and against a coordinator the test
// provides (usually coordtest's), so that it can be stopped and restarted
// mid-test. Other services' tests use it for an in-process queue.
package queuetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/grpctest"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/taskqueue/service"
)

// Options tune the queue. Zero values take the defaults noted.
type Options struct {
	MaxRetries   int           // default 3
	ClaimTimeout time.Duration // default 10m
	ReapInterval time.Duration // default 100ms
	// MetricTaskTypes, when set, are the only task types with their own
	// task_type label (TASK_METRIC_TYPES); default: the first 50 seen.
	MetricTaskTypes []string
	// MaxReplyBytes is the reply byte budget (GRPC_MAX_REPLY_BYTES);
	// default 3 MiB.
	MaxReplyBytes int
	// Quiet logs only warnings and errors.
	Quiet bool
	// Keys are the coordinator's signing keys (coordtest's Cluster.Keys):
	// the queue verifies callers with them and calls the coordinator with a
	// service credential they sign. Required.
	Keys *authtest.Keys
}

// Queue is a running taskqueue service.
type Queue struct {
	t    testing.TB
	cfg  service.Config
	log  *zap.Logger
	Addr string
	// MetricsAddr serves /metrics.
	MetricsAddr string
	// AdminToken is the credential Conn presents.
	AdminToken string
	conn       *grpc.ClientConn

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan error
	running bool
}

// Start runs a queue on databaseURL following the coordinators at
// coordinatorAddrs; Cleanup stops it.
func Start(t testing.TB, databaseURL string, coordinatorAddrs []string, opts Options) *Queue {
	t.Helper()
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 3
	}
	if opts.ClaimTimeout == 0 {
		opts.ClaimTimeout = 10 * time.Minute
	}
	if opts.ReapInterval == 0 {
		opts.ReapInterval = 100 * time.Millisecond
	}
	level := zap.InfoLevel
	if opts.Quiet {
		level = zap.WarnLevel
	}
	if opts.Keys == nil {
		t.Fatal("queuetest: Options.Keys must be the coordinator's keys (coordtest.Cluster.Keys)")
	}
	q := &Queue{t: t, log: zaptest.NewLogger(t, zaptest.Level(level)).Named("taskqueue"), AdminToken: opts.Keys.Admin(t)}
	q.cfg = service.Config{
		ListenAddr:         "127.0.0.1:0",
		MetricsAddr:        "127.0.0.1:0",
		DatabaseURL:        databaseURL,
		ShutdownTimeout:    2 * time.Second,
		CoordinatorAddrs:   coordinatorAddrs,
		MaxRetries:         opts.MaxRetries,
		ClaimTimeout:       opts.ClaimTimeout,
		Retention:          7 * 24 * time.Hour,
		DeadRetention:      30 * 24 * time.Hour,
		ReapInterval:       opts.ReapInterval,
		MetricTaskTypes:    opts.MetricTaskTypes,
		MetricMaxTaskTypes: 50,
		MaxReplyBytes:      opts.MaxReplyBytes,
		Auth:               opts.Keys.Config(t, opts.Keys.Service(t, "taskqueue")),
	}
	q.start()
	t.Cleanup(func() {
		q.Stop()
		_ = q.conn.Close()
	})
	return q
}

func (q *Queue) start() {
	q.t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	cfg := q.cfg
	if q.Addr != "" {
		// A restart comes back on the same address, as a redeployed pod would
		// behind its service name.
		cfg.ListenAddr = q.Addr
		cfg.MetricsAddr = q.MetricsAddr
	}
	// A restart may find its port briefly taken (see grpctest.Rebind).
	svc, err := grpctest.Rebind(func() (*service.Service, error) {
		return service.New(context.Background(), cfg, q.log)
	})
	if err != nil {
		q.t.Fatalf("start taskqueue: %v", err)
	}
	q.Addr, q.MetricsAddr = svc.Addr().String(), svc.MetricsAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	q.cancel, q.done, q.running = cancel, make(chan error, 1), true
	go func() { q.done <- svc.Run(ctx) }()
	if q.conn == nil {
		if q.conn, err = grpcclient.Dial(q.Addr, grpcclient.WithBearer(q.AdminToken)); err != nil {
			q.t.Fatal(err)
		}
	}
}

// Stop stops the service (gracefully); Restart starts it again.
func (q *Queue) Stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running {
		return
	}
	q.cancel()
	if err := <-q.done; err != nil {
		q.t.Errorf("taskqueue stopped with an error: %v", err)
	}
	q.running = false
}

// Restart starts a stopped queue again on the same addresses and database.
func (q *Queue) Restart() { q.start() }

// Tasks is a TaskService client (it reconnects across restarts).
func (q *Queue) Tasks() taskqueuev1.TaskServiceClient {
	return taskqueuev1.NewTaskServiceClient(q.conn)
}

// Lessons is a LessonService client.
func (q *Queue) Lessons() taskqueuev1.LessonServiceClient {
	return taskqueuev1.NewLessonServiceClient(q.conn)
}

// Conn is the client connection to the queue; it presents an admin
// credential unless a call carries its own authorization.
func (q *Queue) Conn() *grpc.ClientConn { return q.conn }
