package task

import (
	"time"

	"github.com/gaia-platform/gaia/internal/window"
)

// Affinity makes a session (by name) prefer a lesson's tasks.
type Affinity struct {
	SessionName string
	LessonID    string
	Score       float64
	Window      *window.Window
	CreatedAt   time.Time
	UpdatedAt   time.Time
}
