package ports

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
	"github.com/gaia-platform/gaia/internal/window"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

// Bounds on what clients may send.
const (
	maxKeyLen       = 256
	maxTypeLen      = 128
	maxPayload      = 256 << 10
	maxMetadata     = 64 << 10
	maxError        = 8 << 10
	maxReason       = 1 << 10
	maxObjective    = 4 << 10
	maxBatch        = 1000
	maxClaim        = 100
	maxWait         = 60 * time.Second
	maxClaimTimeout = 24 * time.Hour
)

var (
	typeRE = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
	nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

func indexed(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

func validateType(field, t string) error {
	switch {
	case t == "":
		return domainerr.Invalid(field, "must not be empty")
	case reqfield.TooLong(t, maxTypeLen):
		return domainerr.Invalid(field, "must be at most 128 characters")
	case !typeRE.MatchString(t):
		return domainerr.Invalid(field, "may hold only letters, digits, '.', '_', ':' and '-'")
	}
	return nil
}

func validateName(field, n string) error {
	switch {
	case n == "":
		return domainerr.Invalid(field, "must not be empty")
	case reqfield.TooLong(n, 128):
		return domainerr.Invalid(field, "must be at most 128 characters")
	case !nameRE.MatchString(n):
		return domainerr.Invalid(field, "may hold only letters, digits, '.', '_' and '-'")
	}
	return nil
}

func validateUUID(field, id string) error {
	if !uuidRE.MatchString(id) {
		if id == "" {
			return domainerr.Invalid(field, "must not be empty")
		}
		return domainerr.Invalid(field, fmt.Sprintf("%q is not a UUID", id))
	}
	return nil
}

func validateTaskID(field, id string) error { return validateUUID(field, id) }

// structJSON renders a Struct as JSON, bounded in size; nil stays nil.
func structJSON(field string, s *structpb.Struct, limit int) (json.RawMessage, error) {
	if s == nil {
		return nil, nil
	}
	if err := reqfield.Struct(field, s); err != nil {
		return nil, err
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		return nil, domainerr.Invalid(field, err.Error())
	}
	if len(b) > limit {
		return nil, domainerr.Invalid(field, fmt.Sprintf("is %d bytes; at most %d", len(b), limit))
	}
	return b, nil
}

// runAt reads an optional run_at. The zero time stands for "unset" inside
// the queue, so a client that sends 0001-01-01T00:00:00Z, most likely a
// zero value it did not mean to send, is told so instead of having its task
// run now.
func runAt(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	t, err := reqfield.Timestamp(field, ts)
	if err == nil && ts != nil && t.IsZero() {
		return t, domainerr.Invalid(field, "is 0001-01-01T00:00:00Z, the zero time; leave it unset to mean now")
	}
	return t, err
}

// newTask validates one enqueue request; prefix names it inside a batch.
func newTask(prefix string, r *taskqueuev1.EnqueueTaskRequest) (task.NewTask, error) {
	t := task.NewTask{IdempotencyKey: r.GetIdempotencyKey(), Type: r.GetTaskType(), Priority: int(r.GetPriority()), LessonID: r.GetLessonId(), MaxAttempts: int(r.GetMaxAttempts())}
	switch {
	case t.IdempotencyKey == "":
		return t, domainerr.Invalid(join(prefix, "idempotency_key"), "must not be empty")
	case reqfield.TooLong(t.IdempotencyKey, maxKeyLen):
		return t, domainerr.Invalid(join(prefix, "idempotency_key"), "must be at most 256 characters")
	}
	if err := reqfield.Text(join(prefix, "idempotency_key"), t.IdempotencyKey); err != nil {
		return t, err
	}
	if err := validateType(join(prefix, "task_type"), t.Type); err != nil {
		return t, err
	}
	if t.Priority < 0 || t.Priority > 10 {
		return t, domainerr.Invalid(join(prefix, "priority"), fmt.Sprintf("must be between 0 and 10, got %d", t.Priority))
	}
	if t.LessonID != "" {
		if err := validateUUID(join(prefix, "lesson_id"), t.LessonID); err != nil {
			return t, err
		}
	}
	if t.MaxAttempts < 0 || t.MaxAttempts > 100 {
		return t, domainerr.Invalid(join(prefix, "max_attempts"), "must be between 1 and 100 (0 for the default)")
	}
	var err error
	if t.Payload, err = structJSON(join(prefix, "payload"), r.GetPayload(), maxPayload); err != nil {
		return t, err
	}
	if t.RunAt, err = runAt(join(prefix, "run_at"), r.GetRunAt()); err != nil {
		return t, err
	}
	if t.ClaimTimeout, err = reqfield.Duration(join(prefix, "claim_timeout"), r.GetClaimTimeout(), 0, time.Second, maxClaimTimeout); err != nil {
		return t, err
	}
	return t, nil
}

func newLesson(r *taskqueuev1.CreateLessonRequest) (task.Lesson, error) {
	l := task.Lesson{Project: r.GetProject(), Name: r.GetName(), Objective: r.GetObjective(), Priority: int(r.GetPriority())}
	switch {
	case l.Project == "" || reqfield.TooLong(l.Project, 128):
		return l, domainerr.Invalid("project", "must be 1 to 128 characters")
	case l.Name == "" || reqfield.TooLong(l.Name, 256):
		return l, domainerr.Invalid("name", "must be 1 to 256 characters")
	case len(l.Objective) > maxObjective:
		return l, domainerr.Invalid("objective", "must be at most 4 KiB")
	case l.Priority < 0 || l.Priority > 10:
		return l, domainerr.Invalid("priority", "must be between 0 and 10")
	}
	for _, f := range []struct{ name, v string }{{"project", l.Project}, {"name", l.Name}, {"objective", l.Objective}} {
		if err := reqfield.Text(f.name, f.v); err != nil {
			return l, err
		}
	}
	var err error
	l.Metadata, err = structJSON("metadata", r.GetMetadata(), maxMetadata)
	return l, err
}

func lessonUpdate(r *taskqueuev1.UpdateLessonRequest) (task.LessonUpdate, error) {
	var u task.LessonUpdate
	paths := r.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = []string{"name", "objective", "priority", "metadata"}
	}
	for _, p := range paths {
		switch p {
		case "name":
			n := r.GetName()
			if n == "" || reqfield.TooLong(n, 256) {
				return u, domainerr.Invalid("name", "must be 1 to 256 characters")
			}
			if err := reqfield.Text("name", n); err != nil {
				return u, err
			}
			u.Name = &n
		case "objective":
			o := r.GetObjective()
			if len(o) > maxObjective {
				return u, domainerr.Invalid("objective", "must be at most 4 KiB")
			}
			if err := reqfield.Text("objective", o); err != nil {
				return u, err
			}
			u.Objective = &o
		case "priority":
			p := int(r.GetPriority())
			if p < 0 || p > 10 {
				return u, domainerr.Invalid("priority", "must be between 0 and 10")
			}
			u.Priority = &p
		case "metadata":
			m, err := structJSON("metadata", r.GetMetadata(), maxMetadata)
			if err != nil {
				return u, err
			}
			if m == nil {
				m = json.RawMessage("{}")
			}
			u.Metadata = m
		default:
			return u, domainerr.Invalid("update_mask", fmt.Sprintf("unknown field %q: use name, objective, priority or metadata", p))
		}
	}
	return u, nil
}

func newAffinity(r *taskqueuev1.SetSessionAffinityRequest) (task.Affinity, error) {
	a := task.Affinity{SessionName: r.GetSessionName(), LessonID: r.GetLessonId(), Score: r.GetScore()}
	if err := validateName("session_name", a.SessionName); err != nil {
		return a, err
	}
	if err := validateUUID("lesson_id", a.LessonID); err != nil {
		return a, err
	}
	if a.Score < 0 || a.Score > 100 || a.Score != a.Score {
		return a, domainerr.Invalid("score", "must be between 0 and 100")
	}
	if pw := r.GetTimeWindow(); pw != nil {
		w, err := window.FromProto(pw)
		if err != nil {
			return a, domainerr.Invalid("time_window", err.Error())
		}
		a.Window = &w
	}
	return a, nil
}

// timePageToken is the page token of a listing ordered by creation time,
// then id.
func timePageToken(t time.Time, id string) string {
	return reqfield.PageToken(t.UTC().Format(time.RFC3339Nano), id)
}

// parseTimePageToken reads a timePageToken; "" is the first page.
func parseTimePageToken(tok string) (time.Time, string, error) {
	parts, err := reqfield.ParsePageToken(tok, 2)
	if err != nil || parts == nil {
		return time.Time{}, "", err
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil || !uuidRE.MatchString(parts[1]) {
		return time.Time{}, "", reqfield.BadPageToken()
	}
	return t, parts[1], nil
}
