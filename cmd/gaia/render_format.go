package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

// Formatting of single values that every command's tables share: times,
// durations, sizes, labels, time windows and free text.

// formatTime shows a timestamp in RFC 3339, UTC; unset is "-".
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// formatDuration rounds a duration to what a person reads: milliseconds
// under a second, tenths of a second under a minute, seconds above.
func formatDuration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	v := d.AsDuration()
	switch {
	case v < time.Second:
		return v.Round(time.Millisecond).String()
	case v < time.Minute:
		return v.Round(100 * time.Millisecond).String()
	default:
		return v.Round(time.Second).String()
	}
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatLabels shows labels sorted by key: "repo=web,team=core".
func formatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}

// formatTimeWindows shows windows as "mon,tue 09:30-17:00 Europe/Paris; …".
func formatTimeWindows(windows []*typev1.TimeWindow) string {
	if len(windows) == 0 {
		return "always"
	}
	var parts []string
	for _, tw := range windows {
		parts = append(parts, formatTimeWindow(tw))
	}
	return strings.Join(parts, "; ")
}

// formatTimeWindow shows one window as "mon,tue 09:30-17:00 Europe/Paris",
// or "every day 22:00-06:00 UTC" when it has no days.
func formatTimeWindow(tw *typev1.TimeWindow) string {
	days := "every day"
	if len(tw.GetDays()) > 0 {
		var ds []string
		for _, d := range tw.GetDays() {
			name := enumName(d)
			ds = append(ds, name[:min(3, len(name))])
		}
		days = strings.Join(ds, ",")
	}
	zone := tw.GetTimeZone()
	if zone == "" {
		zone = "UTC"
	}
	return fmt.Sprintf("%s %s-%s %s", days, clock(tw.GetStartMinute()), clock(tw.GetEndMinute()), zone)
}

func clock(minute int32) string { return fmt.Sprintf("%02d:%02d", minute/60, minute%60) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a free-text field from breaking a table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
