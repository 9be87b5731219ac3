package task

import (
	"encoding/json"
	"time"
)

// Lesson groups tasks that serve one learning objective.
type Lesson struct {
	ID             string
	Project        string
	Name           string
	Objective      string
	Priority       int
	Metadata       json.RawMessage
	TasksTotal     int64
	TasksCompleted int64
	TasksDead      int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ProgressPercent is completed over total, 0 for an empty lesson.
func (l Lesson) ProgressPercent() float64 {
	if l.TasksTotal == 0 {
		return 0
	}
	return float64(l.TasksCompleted) * 100 / float64(l.TasksTotal)
}

// LessonUpdate names the fields UpdateLesson changes.
type LessonUpdate struct {
	Name      *string
	Objective *string
	Priority  *int
	Metadata  json.RawMessage // nil: unchanged
}
