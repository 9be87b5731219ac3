package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	// The zone names --window takes must resolve on machines without a zone
	// database, such as distroless containers.
	_ "time/tzdata"

	typev1 "github.com/gaia-platform/gaia/proto/gaia/type/v1"
)

// timeWindowSyntax is the --window syntax in one line, for flag help and
// errors.
const timeWindowSyntax = "[DAYS] HH:MM-HH:MM [ZONE], such as 'mon-fri 09:00-17:00 Europe/Paris'"

// timeWindowHelp documents the --window syntax that parseTimeWindow reads.
const timeWindowHelp = `  [DAYS] HH:MM-HH:MM [ZONE]

  DAYS   optional; days (mon tue wed thu fri sat sun, or full names) and day
         ranges, comma-separated: "mon,wed", "mon-fri", "sat,sun", "fri-mon"
         (a range may wrap past Sunday). Omitted, the window opens every day.
  HH:MM  the 24-hour opening and closing times; the closing time is exclusive
         and may be 24:00. A closing time before the opening time wraps past
         midnight: "fri 22:00-06:00" opens Friday 22:00 and closes Saturday
         06:00 (the days are those on which the window opens).
  ZONE   optional IANA time zone name, such as Europe/Paris; default UTC.

Examples: "09:00-17:00", "mon-fri 09:00-17:30 Europe/Paris",
"sat,sun 22:00-06:00 America/New_York", "00:00-24:00".`

// weekdays maps the day names --window takes to their proto values.
var weekdays = map[string]typev1.Weekday{
	"mon": typev1.Weekday_WEEKDAY_MONDAY, "monday": typev1.Weekday_WEEKDAY_MONDAY,
	"tue": typev1.Weekday_WEEKDAY_TUESDAY, "tuesday": typev1.Weekday_WEEKDAY_TUESDAY,
	"wed": typev1.Weekday_WEEKDAY_WEDNESDAY, "wednesday": typev1.Weekday_WEEKDAY_WEDNESDAY,
	"thu": typev1.Weekday_WEEKDAY_THURSDAY, "thursday": typev1.Weekday_WEEKDAY_THURSDAY,
	"fri": typev1.Weekday_WEEKDAY_FRIDAY, "friday": typev1.Weekday_WEEKDAY_FRIDAY,
	"sat": typev1.Weekday_WEEKDAY_SATURDAY, "saturday": typev1.Weekday_WEEKDAY_SATURDAY,
	"sun": typev1.Weekday_WEEKDAY_SUNDAY, "sunday": typev1.Weekday_WEEKDAY_SUNDAY,
}

const minutesPerDay = 24 * 60

// parseTimeWindow reads a time window written as timeWindowHelp describes.
// Days come back once each, Monday first; an end of 00:00 means midnight at
// the end of the day (24:00), which the proto spells 1440. The error says
// what is wrong, without the syntax, which the caller adds.
func parseTimeWindow(s string) (*typev1.TimeWindow, error) {
	fields := strings.Fields(s)
	clockAt := -1
	for i, f := range fields {
		if strings.Contains(f, ":") {
			clockAt = i
			break
		}
	}
	if clockAt < 0 {
		return nil, errors.New("no HH:MM-HH:MM time range")
	}
	w := &typev1.TimeWindow{}
	if clockAt > 0 {
		// Spaces after commas are forgiven: "mon, wed".
		days, err := parseWeekdays(strings.Join(fields[:clockAt], ""))
		if err != nil {
			return nil, err
		}
		w.Days = days
	}
	start, end, ok := strings.Cut(fields[clockAt], "-")
	if !ok {
		return nil, fmt.Errorf("time range %q is not HH:MM-HH:MM", fields[clockAt])
	}
	var err error
	if w.StartMinute, err = parseClock(start, false); err != nil {
		return nil, err
	}
	if w.EndMinute, err = parseClock(end, true); err != nil {
		return nil, err
	}
	if w.StartMinute == w.EndMinute {
		return nil, fmt.Errorf("time range %q opens and closes at the same time (the whole day is 00:00-24:00)", fields[clockAt])
	}
	if w.EndMinute == 0 {
		w.EndMinute = minutesPerDay
	}
	switch rest := fields[clockAt+1:]; len(rest) {
	case 0:
	case 1:
		if rest[0] == "Local" {
			return nil, errors.New(`time zone "Local" is not an IANA name such as Europe/Paris`)
		}
		if _, err := time.LoadLocation(rest[0]); err != nil {
			return nil, fmt.Errorf("unknown time zone %q (IANA names such as Europe/Paris)", rest[0])
		}
		w.TimeZone = rest[0]
	default:
		return nil, fmt.Errorf("unexpected %q after the time zone", strings.Join(rest[1:], " "))
	}
	return w, nil
}

// parseWeekdays reads "mon,wed-fri" into its days, once each, Monday first.
func parseWeekdays(s string) ([]typev1.Weekday, error) {
	var set [8]bool // by Weekday number; 0 is unused
	for _, item := range strings.Split(strings.ToLower(s), ",") {
		from, to, isRange := strings.Cut(item, "-")
		first, ok := weekdays[from]
		if !ok {
			return nil, fmt.Errorf("unknown day %q (days are mon, tue, wed, thu, fri, sat, sun)", from)
		}
		last := first
		if isRange {
			if last, ok = weekdays[to]; !ok {
				return nil, fmt.Errorf("unknown day %q (days are mon, tue, wed, thu, fri, sat, sun)", to)
			}
		}
		for d := first; ; d = d%7 + 1 { // Sunday (7) wraps to Monday (1)
			set[d] = true
			if d == last {
				break
			}
		}
	}
	var days []typev1.Weekday
	for d := typev1.Weekday_WEEKDAY_MONDAY; d <= typev1.Weekday_WEEKDAY_SUNDAY; d++ {
		if set[d] {
			days = append(days, d)
		}
	}
	return days, nil
}

// parseClock reads H:MM or HH:MM on a 24-hour clock into minutes since
// midnight; allow24 admits 24:00, the end of the day.
func parseClock(s string, allow24 bool) (int32, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, herr := strconv.Atoi(hh)
	m, merr := strconv.Atoi(mm)
	switch {
	case !ok || herr != nil || merr != nil || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 || strings.ContainsAny(hh+mm, "+-"):
		return 0, fmt.Errorf("time %q is not HH:MM", s)
	case allow24 && h == 24 && m == 0:
		return minutesPerDay, nil
	case h <= 23 && m <= 59:
		return int32(h*60 + m), nil
	case allow24:
		return 0, fmt.Errorf("time %q is not a time of day (00:00 to 24:00)", s)
	default:
		return 0, fmt.Errorf("time %q is not a time of day (00:00 to 23:59)", s)
	}
}
