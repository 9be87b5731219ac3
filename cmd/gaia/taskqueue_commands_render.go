package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// Human output of the task, lesson and affinity commands, in the coordinator
// commands' style (see coordinator_commands_render.go).

func renderTasks(w io.Writer, tasks []*taskqueuev1.Task) error {
	if len(tasks) == 0 {
		_, err := fmt.Fprintln(w, "no tasks")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tTYPE\tKEY\tSTATE\tPRIORITY\tATTEMPTS\tLESSON\tRUN AT\tCLAIMED BY")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d/%d\t%s\t%s\t%s\n",
			t.GetTaskId(), t.GetTaskType(), oneLine(t.GetIdempotencyKey()), enumName(t.GetState()), t.GetPriority(),
			t.GetAttempt(), t.GetMaxAttempts(), orDash(t.GetLessonId()), formatTime(t.GetRunAt()), orDash(t.GetClaimedBySessionName()))
	}
	return tw.Flush()
}

func renderTask(w io.Writer, t *taskqueuev1.Task) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", t.GetTaskId())
	fmt.Fprintf(tw, "key:\t%s\n", oneLine(t.GetIdempotencyKey()))
	fmt.Fprintf(tw, "type:\t%s\n", t.GetTaskType())
	fmt.Fprintf(tw, "state:\t%s\n", enumName(t.GetState()))
	fmt.Fprintf(tw, "priority:\t%d\n", t.GetPriority())
	fmt.Fprintf(tw, "lesson:\t%s\n", orDash(t.GetLessonId()))
	fmt.Fprintf(tw, "attempts:\t%d of %d\n", t.GetAttempt(), t.GetMaxAttempts())
	fmt.Fprintf(tw, "run at:\t%s\n", formatTime(t.GetRunAt()))
	fmt.Fprintf(tw, "claim timeout:\t%s\n", formatDuration(t.GetClaimTimeout()))
	fmt.Fprintf(tw, "claimed by:\t%s\n", formatClaimant(t))
	fmt.Fprintf(tw, "claim expires:\t%s\n", formatTime(t.GetClaimExpiresAt()))
	fmt.Fprintf(tw, "last error:\t%s\n", orDash(oneLine(t.GetLastError())))
	fmt.Fprintf(tw, "payload:\t%s\n", formatStruct(t.GetPayload()))
	fmt.Fprintf(tw, "result:\t%s\n", formatStruct(t.GetResult()))
	fmt.Fprintf(tw, "created at:\t%s\n", formatTime(t.GetCreatedAt()))
	fmt.Fprintf(tw, "updated at:\t%s\n", formatTime(t.GetUpdatedAt()))
	fmt.Fprintf(tw, "finished at:\t%s\n", formatTime(t.GetFinishedAt()))
	return tw.Flush()
}

// formatClaimant shows who holds a task: "claude_1 (6f1c)".
func formatClaimant(t *taskqueuev1.Task) string {
	name, id := t.GetClaimedBySessionName(), t.GetClaimedBySessionId()
	switch {
	case id == "":
		return orDash(name)
	case name == "":
		return id
	}
	return name + " (" + id + ")"
}

// formatStruct shows a JSON object on one line; unset is "-".
func formatStruct(s *structpb.Struct) string {
	if s == nil {
		return "-"
	}
	b, err := compactProtoJSON(s)
	if err != nil {
		return "(unprintable: " + err.Error() + ")"
	}
	return string(b)
}

func renderLessons(w io.Writer, lessons []*taskqueuev1.Lesson) error {
	if len(lessons) == 0 {
		_, err := fmt.Fprintln(w, "no lessons")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tPROJECT\tNAME\tPRIORITY\tPROGRESS")
	for _, l := range lessons {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", l.GetLessonId(), l.GetProject(), oneLine(l.GetName()), l.GetPriority(), progressBar(l))
	}
	return tw.Flush()
}

func renderLesson(w io.Writer, l *taskqueuev1.Lesson) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", l.GetLessonId())
	fmt.Fprintf(tw, "project:\t%s\n", l.GetProject())
	fmt.Fprintf(tw, "name:\t%s\n", oneLine(l.GetName()))
	fmt.Fprintf(tw, "objective:\t%s\n", orDash(oneLine(l.GetObjective())))
	fmt.Fprintf(tw, "priority:\t%d\n", l.GetPriority())
	fmt.Fprintf(tw, "progress:\t%s\n", progressBar(l))
	fmt.Fprintf(tw, "metadata:\t%s\n", formatStruct(l.GetMetadata()))
	fmt.Fprintf(tw, "created at:\t%s\n", formatTime(l.GetCreatedAt()))
	fmt.Fprintf(tw, "updated at:\t%s\n", formatTime(l.GetUpdatedAt()))
	return tw.Flush()
}

// progressBarWidth is how many cells the bar has; each is 5 %.
const progressBarWidth = 20

// progressBar shows a lesson's progress:
//
//	[##########----------]  50.0%  10/20 done, 1 dead
//
// The cells and the percentage come from the counts, as progress_percent is
// defined, so that the bar and the figures never disagree; a cell fills only
// once its whole 5 % is done.
func progressBar(l *taskqueuev1.Lesson) string {
	total := l.GetTasksTotal()
	if total <= 0 {
		return "[" + strings.Repeat("-", progressBarWidth) + "]   0.0%  no tasks"
	}
	done := min(max(l.GetTasksCompleted(), 0), total)
	percent := float64(done) * 100 / float64(total)
	cells := int(done * progressBarWidth / total)
	bar := "[" + strings.Repeat("#", cells) + strings.Repeat("-", progressBarWidth-cells) + "]"
	return bar + fmt.Sprintf(" %5.1f%%  %d/%d done, %d dead", percent, l.GetTasksCompleted(), total, l.GetTasksDead())
}

func renderAffinities(w io.Writer, affinities []*taskqueuev1.SessionAffinity) error {
	if len(affinities) == 0 {
		_, err := fmt.Fprintln(w, "no affinities")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SESSION\tLESSON\tSCORE\tWINDOW\tUPDATED")
	for _, a := range affinities {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n",
			a.GetSessionName(), a.GetLessonId(), formatScore(a.GetScore()), formatAffinityWindow(a), formatTime(a.GetUpdatedAt()))
	}
	return tw.Flush()
}

func renderAffinity(w io.Writer, a *taskqueuev1.SessionAffinity) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "session:\t%s\n", a.GetSessionName())
	fmt.Fprintf(tw, "lesson:\t%s\n", a.GetLessonId())
	fmt.Fprintf(tw, "score:\t%s\n", formatScore(a.GetScore()))
	fmt.Fprintf(tw, "window:\t%s\n", formatAffinityWindow(a))
	fmt.Fprintf(tw, "created at:\t%s\n", formatTime(a.GetCreatedAt()))
	fmt.Fprintf(tw, "updated at:\t%s\n", formatTime(a.GetUpdatedAt()))
	return tw.Flush()
}

// formatAffinityWindow shows when an affinity counts; without a window,
// "always".
func formatAffinityWindow(a *taskqueuev1.SessionAffinity) string {
	if a.GetTimeWindow() == nil {
		return "always"
	}
	return formatTimeWindow(a.GetTimeWindow())
}

// formatScore shows a score without trailing zeros: 75, 12.5.
func formatScore(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }
