package detect

// Indicator is one kind of frustration or struggle the detector recognises.
// The values match gaia.metrics.v1.Indicator.
type Indicator uint8

// The nine indicators of DESIGN.md's table.
const (
	RageClick Indicator = iota + 1
	Struggle
	RapidGuessing
	WheelSpinning
	ErrorBurst
	KeystrokeThrash
	Idle
	LowRating
	ClassroomHotspot
)

// NumIndicators is the number of indicators; valid ones are 1..NumIndicators.
const NumIndicators = 9

var indicatorNames = [NumIndicators + 1]string{
	"", "rage_click", "struggle", "rapid_guessing", "wheel_spinning", "error_burst",
	"keystroke_thrash", "idle", "low_rating", "classroom_hotspot",
}

// String is the indicator's name as DESIGN.md writes it ("rage_click").
func (i Indicator) String() string {
	if i.Valid() {
		return indicatorNames[i]
	}
	return "unknown"
}

// Valid reports whether i is one of the nine indicators.
func (i Indicator) Valid() bool { return i >= RageClick && i <= ClassroomHotspot }

// ParseIndicator is the inverse of String.
func ParseIndicator(s string) (Indicator, bool) {
	for i := RageClick; i <= ClassroomHotspot; i++ {
		if indicatorNames[i] == s {
			return i, true
		}
	}
	return 0, false
}

// Indicators lists all nine in order.
func Indicators() []Indicator {
	out := make([]Indicator, 0, NumIndicators)
	for i := RageClick; i <= ClassroomHotspot; i++ {
		out = append(out, i)
	}
	return out
}

// keyedByItem reports whether the item is part of the indicator's alert key
// (DESIGN.md: "plus the item for struggle, wheel_spinning and
// classroom_hotspot").
func (i Indicator) keyedByItem() bool {
	return i == Struggle || i == WheelSpinning || i == ClassroomHotspot
}

// Severity orders how urgent a finding is. The values match
// gaia.metrics.v1.Severity.
//
// Each indicator's severity, and why (docs/DETECTION.md repeats it for
// teachers):
//   - info: keystroke_thrash — a student rewriting a lot is often just careful;
//     worth a glance, not an interruption.
//   - warning: rage_click, struggle, rapid_guessing, error_burst, idle, and a
//     rating of 2 — something is going wrong and a teacher may want to look.
//   - high: wheel_spinning and a rating of 1 — the student is stuck, or says
//     so plainly; the research behind wheel spinning (Beck & Gong) shows these
//     students rarely recover alone.
//   - classroom_hotspot: high, critical when at least half of the classroom's
//     active students struggle on the item — a whole-class problem.
//
// A student finding escalates one step (at most to critical) when two or more
// other indicators fired for the same student within the cooldown before it:
// several signals at once mean a student in real trouble.
type Severity uint8

// Severities, least urgent first.
const (
	Info Severity = iota + 1
	Warning
	High
	Critical
)

var severityNames = [...]string{"", "info", "warning", "high", "critical"}

func (s Severity) String() string {
	if s >= Info && s <= Critical {
		return severityNames[s]
	}
	return "unknown"
}

// ParseSeverity is the inverse of String.
func ParseSeverity(s string) (Severity, bool) {
	for v := Info; v <= Critical; v++ {
		if severityNames[v] == s {
			return v, true
		}
	}
	return 0, false
}
