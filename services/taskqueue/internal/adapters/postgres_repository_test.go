package adapters

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/pgtest"
	"github.com/gaia-platform/gaia/migrations"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// repositories are the three PostgreSQL repositories over the package's
// database, migrated.
type repositories struct {
	tasks      task.Repository
	lessons    task.LessonRepository
	affinities task.AffinityRepository
}

func openRepositories(t *testing.T) repositories {
	t.Helper()
	files, err := migrations.For("taskqueue")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pg.OpenSchema(ctx, pgtest.URL(t), "taskqueue", files, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return repositories{
		tasks:      NewTaskPostgresRepository(pool, zaptest.NewLogger(t)),
		lessons:    NewLessonPostgresRepository(pool),
		affinities: NewAffinityPostgresRepository(pool),
	}
}

// enqueueOne enqueues a task of its own type, so that a claim by that type
// finds this task and no other test's.
func enqueueOne(t *testing.T, r repositories) task.Task {
	t.Helper()
	out, err := r.tasks.Enqueue(context.Background(), []task.NewTask{{
		ID: uuid.NewString(), IdempotencyKey: uuid.NewString(), Type: "contract-" + uuid.NewString()[:8],
		Payload: []byte(`{}`), MaxAttempts: 3, ClaimTimeout: time.Minute,
	}})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return out[0].Task
}

func claimOne(t *testing.T, r repositories, tk task.Task, sessionID string) task.Claim {
	t.Helper()
	claims, _, err := r.tasks.Claim(context.Background(), task.ClaimRequest{
		SessionID: sessionID, SessionName: sessionID, Types: []string{tk.Type}, Limit: 1, MaxConcurrent: 1,
	})
	if err != nil || len(claims) != 1 || claims[0].Task.ID != tk.ID {
		t.Fatalf("claim = %+v, %v; want the one task", claims, err)
	}
	return claims[0]
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}

// TestRepositoryContract holds the repositories to what the domain's
// interfaces promise, against PostgreSQL directly rather than through the
// whole service: the fencing of claims, and which sentinel error tells a
// missing row from a refused change.
func TestRepositoryContract(t *testing.T) {
	r := openRepositories(t)
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"enqueue is idempotent by key", func(t *testing.T) {
			nt := task.NewTask{ID: uuid.NewString(), IdempotencyKey: uuid.NewString(), Type: "contract", Payload: []byte(`{}`), MaxAttempts: 3, ClaimTimeout: time.Minute}
			first, err := r.tasks.Enqueue(ctx, []task.NewTask{nt})
			if err != nil || first[0].Duplicate {
				t.Fatalf("first enqueue = %+v, %v", first, err)
			}
			nt.ID = uuid.NewString()
			again, err := r.tasks.Enqueue(ctx, []task.NewTask{nt})
			if err != nil || !again[0].Duplicate || again[0].Task.ID != first[0].Task.ID {
				t.Fatalf("second enqueue = %+v, %v; want the first task as a duplicate", again, err)
			}
		}},
		{"a claim is fenced by its token and its session", func(t *testing.T) {
			c := claimOne(t, r, enqueueOne(t, r), "s-fenced")
			if c.Token != task.ClaimTokenOf(c.Task) || c.Token.Attempt != 1 {
				t.Fatalf("token %+v for task at attempt %d", c.Token, c.Task.Attempt)
			}
			_, err := r.tasks.Complete(ctx, c.Token, "s-other", nil)
			wantErr(t, "complete by another session", err, task.ErrClaimLost)
			stale := task.ClaimToken{TaskID: c.Token.TaskID, Attempt: c.Token.Attempt + 1}
			_, err = r.tasks.Complete(ctx, stale, "s-fenced", nil)
			wantErr(t, "complete with another attempt's token", err, task.ErrClaimLost)
			done, err := r.tasks.Complete(ctx, c.Token, "s-fenced", []byte(`{"ok":true}`))
			if err != nil || done.State != task.Completed {
				t.Fatalf("complete = %+v, %v", done, err)
			}
			_, err = r.tasks.Complete(ctx, c.Token, "s-fenced", nil)
			wantErr(t, "complete twice", err, task.ErrClaimLost)
			_, err = r.tasks.Extend(ctx, c.Token, "s-fenced", time.Minute)
			wantErr(t, "extend a settled claim", err, task.ErrClaimLost)
		}},
		{"a claim taken back is lost to its holder", func(t *testing.T) {
			c := claimOne(t, r, enqueueOne(t, r), "s-requeued")
			rq, err := r.tasks.RequeueSession(ctx, "s-requeued", "session failed")
			if err != nil || len(rq) != 1 || rq[0].Dead {
				t.Fatalf("requeue = %+v, %v", rq, err)
			}
			_, _, err = r.tasks.Fail(ctx, c.Token, "s-requeued", "boom", true, time.Second)
			wantErr(t, "fail a claim taken back", err, task.ErrClaimLost)
		}},
		{"settling an unknown task is not found", func(t *testing.T) {
			tok := task.ClaimToken{TaskID: uuid.NewString(), Attempt: 1}
			_, err := r.tasks.Complete(ctx, tok, "s", nil)
			wantErr(t, "complete", err, task.ErrTaskNotFound)
			_, err = r.tasks.Extend(ctx, tok, "s", time.Minute)
			wantErr(t, "extend", err, task.ErrTaskNotFound)
			_, _, err = r.tasks.Fail(ctx, tok, "s", "boom", true, time.Second)
			wantErr(t, "fail", err, task.ErrTaskNotFound)
			_, errs, err := r.tasks.CompleteMany(ctx, "s", []task.Completion{{Token: tok}})
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, "complete many", errs[0], task.ErrTaskNotFound)
		}},
		{"cancel and retry tell a missing task from a refused change", func(t *testing.T) {
			tk := enqueueOne(t, r)
			_, err := r.tasks.Retry(ctx, tk.ID, false, time.Time{})
			wantErr(t, "retry a pending task", err, task.ErrNotRetryable)
			cancelled, err := r.tasks.Cancel(ctx, tk.ID, "not needed")
			if err != nil || cancelled.State != task.Cancelled {
				t.Fatalf("cancel = %+v, %v", cancelled, err)
			}
			_, err = r.tasks.Cancel(ctx, tk.ID, "again")
			wantErr(t, "cancel twice", err, task.ErrNotCancellable)
			revived, err := r.tasks.Retry(ctx, tk.ID, false, time.Time{})
			if err != nil || revived.State != task.Pending {
				t.Fatalf("retry = %+v, %v", revived, err)
			}
			_, err = r.tasks.Cancel(ctx, uuid.NewString(), "gone")
			wantErr(t, "cancel unknown", err, task.ErrTaskNotFound)
			_, err = r.tasks.Retry(ctx, uuid.NewString(), false, time.Time{})
			wantErr(t, "retry unknown", err, task.ErrTaskNotFound)
			_, err = r.tasks.Get(ctx, uuid.NewString())
			wantErr(t, "get unknown", err, task.ErrTaskNotFound)
		}},
		{"lessons", func(t *testing.T) {
			l := task.Lesson{ID: uuid.NewString(), Project: "contract", Name: "lesson-" + uuid.NewString()[:8], Metadata: []byte(`{}`)}
			if _, err := r.lessons.CreateLesson(ctx, l); err != nil {
				t.Fatal(err)
			}
			l2 := l
			l2.ID = uuid.NewString()
			_, err := r.lessons.CreateLesson(ctx, l2)
			wantErr(t, "create a taken name", err, task.ErrLessonExists)
			_, err = r.lessons.GetLesson(ctx, uuid.NewString())
			wantErr(t, "get unknown", err, task.ErrLessonNotFound)
			p := 7
			_, err = r.lessons.UpdateLesson(ctx, uuid.NewString(), task.LessonUpdate{Priority: &p})
			wantErr(t, "update unknown", err, task.ErrLessonNotFound)
			got, err := r.lessons.UpdateLesson(ctx, l.ID, task.LessonUpdate{Priority: &p})
			if err != nil || got.Priority != 7 || got.Name != l.Name {
				t.Fatalf("update = %+v, %v", got, err)
			}
		}},
		{"affinities", func(t *testing.T) {
			_, err := r.affinities.SetAffinity(ctx, task.Affinity{SessionName: "w", LessonID: uuid.NewString(), Score: 1})
			wantErr(t, "set for an unknown lesson", err, task.ErrLessonNotFound)
			err = r.affinities.DeleteAffinity(ctx, "w", uuid.NewString())
			wantErr(t, "delete unknown", err, task.ErrAffinityNotFound)
			l, err := r.lessons.CreateLesson(ctx, task.Lesson{ID: uuid.NewString(), Project: "contract", Name: "aff-" + uuid.NewString()[:8], Metadata: []byte(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.affinities.SetAffinity(ctx, task.Affinity{SessionName: "w-aff", LessonID: l.ID, Score: 5}); err != nil {
				t.Fatal(err)
			}
			list, err := r.affinities.ListAffinities(ctx, task.AffinityFilter{SessionName: "w-aff", Limit: 10})
			if err != nil || len(list) != 1 || list[0].LessonID != l.ID || list[0].Score != 5 {
				t.Fatalf("list = %+v, %v", list, err)
			}
			if err := r.affinities.DeleteAffinity(ctx, "w-aff", l.ID); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}
