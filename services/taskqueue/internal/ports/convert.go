package ports

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/taskqueue/internal/domain/task"
)

var stateFromProto = map[taskqueuev1.TaskState]task.State{
	taskqueuev1.TaskState_TASK_STATE_PENDING:   task.Pending,
	taskqueuev1.TaskState_TASK_STATE_CLAIMED:   task.Claimed,
	taskqueuev1.TaskState_TASK_STATE_COMPLETED: task.Completed,
	taskqueuev1.TaskState_TASK_STATE_DEAD:      task.Dead,
	taskqueuev1.TaskState_TASK_STATE_CANCELLED: task.Cancelled,
}

var stateToProto = func() map[task.State]taskqueuev1.TaskState {
	m := map[task.State]taskqueuev1.TaskState{}
	for k, v := range stateFromProto {
		m[v] = k
	}
	return m
}()

func jsonStruct(raw json.RawMessage) (*structpb.Struct, error) {
	if raw == nil {
		return nil, nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("stored JSON is not an object: %w", err)
	}
	return s, nil
}

func taskToProto(t task.Task) (*taskqueuev1.Task, error) {
	payload, err := jsonStruct(t.Payload)
	if err != nil {
		return nil, err
	}
	result, err := jsonStruct(t.Result)
	if err != nil {
		return nil, err
	}
	p := &taskqueuev1.Task{
		TaskId:               t.ID,
		IdempotencyKey:       t.IdempotencyKey,
		TaskType:             t.Type,
		Payload:              payload,
		Priority:             int32(t.Priority),
		LessonId:             t.LessonID,
		State:                stateToProto[t.State],
		Attempt:              int32(t.Attempt),
		MaxAttempts:          int32(t.MaxAttempts),
		RunAt:                timestamppb.New(t.RunAt),
		ClaimTimeout:         durationpb.New(t.ClaimTimeout),
		ClaimedBySessionId:   t.ClaimedBySessionID,
		ClaimedBySessionName: t.ClaimedBySessionName,
		Result:               result,
		LastError:            t.LastError,
		CreatedAt:            timestamppb.New(t.CreatedAt),
		UpdatedAt:            timestamppb.New(t.UpdatedAt),
	}
	if !t.ClaimExpiresAt.IsZero() {
		p.ClaimExpiresAt = timestamppb.New(t.ClaimExpiresAt)
	}
	if !t.FinishedAt.IsZero() {
		p.FinishedAt = timestamppb.New(t.FinishedAt)
	}
	return p, nil
}

func enqueuedToProto(e task.Enqueued) (*taskqueuev1.EnqueueTaskResponse, error) {
	t, err := taskToProto(e.Task)
	return &taskqueuev1.EnqueueTaskResponse{Task: t, Duplicate: e.Duplicate}, err
}

func lessonToProto(l task.Lesson) (*taskqueuev1.Lesson, error) {
	md, err := jsonStruct(l.Metadata)
	if err != nil {
		return nil, err
	}
	return &taskqueuev1.Lesson{
		LessonId:        l.ID,
		Project:         l.Project,
		Name:            l.Name,
		Objective:       l.Objective,
		Priority:        int32(l.Priority),
		TasksTotal:      l.TasksTotal,
		TasksCompleted:  l.TasksCompleted,
		TasksDead:       l.TasksDead,
		ProgressPercent: l.ProgressPercent(),
		Metadata:        md,
		CreatedAt:       timestamppb.New(l.CreatedAt),
		UpdatedAt:       timestamppb.New(l.UpdatedAt),
	}, nil
}

func affinityToProto(a task.Affinity) *taskqueuev1.SessionAffinity {
	p := &taskqueuev1.SessionAffinity{
		SessionName: a.SessionName,
		LessonId:    a.LessonID,
		Score:       a.Score,
		CreatedAt:   timestamppb.New(a.CreatedAt),
		UpdatedAt:   timestamppb.New(a.UpdatedAt),
	}
	if a.Window != nil {
		p.TimeWindow = a.Window.ToProto()
	}
	return p
}
