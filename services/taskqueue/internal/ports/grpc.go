// Package ports is the taskqueue service's gRPC surface: handlers validate requests,
// convert between protobuf and the app's types, call one use case and return its
// errors for the shared interceptor to map. No SQL and no business rules here.
package ports

import (
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// TaskServer serves gaia.taskqueue.v1.TaskService. Its RPCs answer
// UNIMPLEMENTED until the queue is built.
type TaskServer struct {
	taskqueuev1.UnimplementedTaskServiceServer
}

// LessonServer serves gaia.taskqueue.v1.LessonService. Its RPCs answer
// UNIMPLEMENTED until lessons are built.
type LessonServer struct {
	taskqueuev1.UnimplementedLessonServiceServer
}
