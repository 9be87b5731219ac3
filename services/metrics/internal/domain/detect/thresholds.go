package detect

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Thresholds are the tunable rules of each indicator, one field for each field
// of gaia.metrics.v1.DetectionThresholds. In a classroom's explicit overrides
// a zero field means "not set".
type Thresholds struct {
	RageClickMinClicks     int32
	RageClickMaxInterval   time.Duration
	RageClickMaxDistancePx float64

	StruggleWindowAttempts int32
	StruggleMaxCorrect     int32

	RapidGuessingWindowAttempts int32
	RapidGuessingMinGuesses     int32
	RapidGuessingMaxDelay       time.Duration

	WheelSpinningMinAttempts int32

	ErrorBurstMinErrors int32
	ErrorBurstWindow    time.Duration

	KeystrokeThrashMinDeletionRatio float64
	KeystrokeThrashMinKeystrokes    int32
	KeystrokeThrashWindow           time.Duration

	IdleTimeout time.Duration

	LowRatingMaxRating int32

	HotspotMinFraction float64
	HotspotMinStudents int32
	HotspotWindow      time.Duration

	AlertCooldown time.Duration
}

// MasteryStreak is what ends wheel spinning on an item: this many correct
// attempts in a row (DESIGN.md: "without mastery (3 correct in a row)").
const MasteryStreak = 3

// MaxAttemptWindow bounds the attempt windows (struggle, rapid guessing): the
// detector keeps the last attempts as bits of one machine word.
const MaxAttemptWindow = 64

// Defaults are DESIGN.md's published anchors.
func Defaults() Thresholds {
	return Thresholds{
		RageClickMinClicks:              3,
		RageClickMaxInterval:            time.Second,
		RageClickMaxDistancePx:          30,
		StruggleWindowAttempts:          10,
		StruggleMaxCorrect:              3,
		RapidGuessingWindowAttempts:     10,
		RapidGuessingMinGuesses:         3,
		RapidGuessingMaxDelay:           2 * time.Second,
		WheelSpinningMinAttempts:        10,
		ErrorBurstMinErrors:             5,
		ErrorBurstWindow:                60 * time.Second,
		KeystrokeThrashMinDeletionRatio: 0.5,
		KeystrokeThrashMinKeystrokes:    20,
		KeystrokeThrashWindow:           30 * time.Second,
		IdleTimeout:                     2 * time.Minute,
		LowRatingMaxRating:              2,
		HotspotMinFraction:              0.3,
		HotspotMinStudents:              3,
		HotspotWindow:                   5 * time.Minute,
		AlertCooldown:                   10 * time.Minute,
	}
}

// Sensitivity scales every count and window threshold at once. The values
// match gaia.metrics.v1.Sensitivity.
type Sensitivity uint8

// Sensitivity presets.
const (
	SensitivityLow Sensitivity = iota + 1
	SensitivityNormal
	SensitivityHigh
)

func (s Sensitivity) String() string {
	switch s {
	case SensitivityLow:
		return "low"
	case SensitivityNormal:
		return "normal"
	case SensitivityHigh:
		return "high"
	}
	return "unknown"
}

// Preset factors. Low sensitivity asks for half as much again of everything
// (×1.5 the counts a rule needs, ⅔ of its windows, ×1.5 the idle timeout);
// high sensitivity asks for a fifth less (×0.8 the counts, ×1.25 the windows,
// ×0.8 the idle timeout). Counts a rule needs round up, so high sensitivity
// never turns a 3-click rage click into a double click; counts a rule allows
// (struggle's correct answers) round down.
const (
	lowFactor  = 1.5
	highFactor = 0.8
)

// fieldKind says what a threshold is, which decides how it is validated and
// how sensitivity scales it.
type fieldKind uint8

const (
	countNeeded    fieldKind = iota // more is stricter: ceil(v × f)
	countAllowed                    // more is more lenient: floor(v ÷ f)
	windowLength                    // longer is more lenient: v ÷ f
	timeoutLength                   // longer is stricter: v × f
	fraction                        // not scaled
	ratingValue                     // not scaled
	cooldownLength                  // not scaled: it limits repeats, not detection
)

// thresholdField describes one field of Thresholds: its API name, what it is,
// and where it lives. Exactly one of i, f, d is set.
type thresholdField struct {
	name string
	kind fieldKind
	max  float64 // upper bound for counts, 0 for none
	i    func(*Thresholds) *int32
	f    func(*Thresholds) *float64
	d    func(*Thresholds) *time.Duration
}

const maxCount = 100000

var thresholdFields = []thresholdField{
	{name: "rage_click_min_clicks", kind: countNeeded, max: maxCount, i: func(t *Thresholds) *int32 { return &t.RageClickMinClicks }},
	{name: "rage_click_max_interval", kind: windowLength, d: func(t *Thresholds) *time.Duration { return &t.RageClickMaxInterval }},
	{name: "rage_click_max_distance_px", kind: windowLength, f: func(t *Thresholds) *float64 { return &t.RageClickMaxDistancePx }},
	{name: "struggle_window_attempts", kind: countNeeded, max: MaxAttemptWindow, i: func(t *Thresholds) *int32 { return &t.StruggleWindowAttempts }},
	{name: "struggle_max_correct", kind: countAllowed, max: MaxAttemptWindow, i: func(t *Thresholds) *int32 { return &t.StruggleMaxCorrect }},
	{name: "rapid_guessing_window_attempts", kind: windowLength, max: MaxAttemptWindow, i: func(t *Thresholds) *int32 { return &t.RapidGuessingWindowAttempts }},
	{name: "rapid_guessing_min_guesses", kind: countNeeded, max: MaxAttemptWindow, i: func(t *Thresholds) *int32 { return &t.RapidGuessingMinGuesses }},
	{name: "rapid_guessing_max_delay", kind: windowLength, d: func(t *Thresholds) *time.Duration { return &t.RapidGuessingMaxDelay }},
	{name: "wheel_spinning_min_attempts", kind: countNeeded, max: maxCount, i: func(t *Thresholds) *int32 { return &t.WheelSpinningMinAttempts }},
	{name: "error_burst_min_errors", kind: countNeeded, max: maxCount, i: func(t *Thresholds) *int32 { return &t.ErrorBurstMinErrors }},
	{name: "error_burst_window", kind: windowLength, d: func(t *Thresholds) *time.Duration { return &t.ErrorBurstWindow }},
	{name: "keystroke_thrash_min_deletion_ratio", kind: fraction, f: func(t *Thresholds) *float64 { return &t.KeystrokeThrashMinDeletionRatio }},
	{name: "keystroke_thrash_min_keystrokes", kind: countNeeded, max: maxCount, i: func(t *Thresholds) *int32 { return &t.KeystrokeThrashMinKeystrokes }},
	{name: "keystroke_thrash_window", kind: windowLength, d: func(t *Thresholds) *time.Duration { return &t.KeystrokeThrashWindow }},
	{name: "idle_timeout", kind: timeoutLength, d: func(t *Thresholds) *time.Duration { return &t.IdleTimeout }},
	{name: "low_rating_max_rating", kind: ratingValue, max: 5, i: func(t *Thresholds) *int32 { return &t.LowRatingMaxRating }},
	{name: "hotspot_min_fraction", kind: fraction, f: func(t *Thresholds) *float64 { return &t.HotspotMinFraction }},
	{name: "hotspot_min_students", kind: countNeeded, max: maxCount, i: func(t *Thresholds) *int32 { return &t.HotspotMinStudents }},
	{name: "hotspot_window", kind: windowLength, d: func(t *Thresholds) *time.Duration { return &t.HotspotWindow }},
	{name: "alert_cooldown", kind: cooldownLength, d: func(t *Thresholds) *time.Duration { return &t.AlertCooldown }},
}

// ThresholdNames lists the API names of every threshold, in field order.
func ThresholdNames() []string {
	out := make([]string, len(thresholdFields))
	for i, f := range thresholdFields {
		out[i] = f.name
	}
	return out
}

// maxDuration bounds every duration threshold; nothing a teacher means lasts
// longer than a day.
const maxDuration = 24 * time.Hour

// Validate checks the fields that are set (non-zero): counts ≥ 1, fractions
// in (0, 1], durations > 0, each within its bound. prefix names the message
// the fields live in, such as "settings.thresholds"; the error names the field.
func (t Thresholds) Validate(prefix string) error {
	for _, f := range thresholdFields {
		name := prefix + "." + f.name
		switch {
		case f.i != nil:
			v := *f.i(&t)
			if v == 0 {
				continue
			}
			if v < 1 {
				return domainerr.Invalid(name, "must be at least 1")
			}
			if f.max > 0 && float64(v) > f.max {
				return domainerr.Invalid(name, fmt.Sprintf("must be at most %g", f.max))
			}
		case f.f != nil:
			v := *f.f(&t)
			if v == 0 {
				continue
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return domainerr.Invalid(name, "must be a finite number")
			}
			if f.kind == fraction && (v <= 0 || v > 1) {
				return domainerr.Invalid(name, "must be a fraction in (0, 1]")
			}
			if f.kind != fraction && (v <= 0 || v > maxCount) {
				return domainerr.Invalid(name, fmt.Sprintf("must be more than 0 and at most %d", maxCount))
			}
		default:
			v := *f.d(&t)
			if v == 0 {
				continue
			}
			if v < 0 {
				return domainerr.Invalid(name, "must be longer than 0")
			}
			if v > maxDuration {
				return domainerr.Invalid(name, "must be at most 24h")
			}
		}
	}
	return nil
}

// checkConsistent checks rules that tie fields together, on effective
// thresholds.
func (t Thresholds) checkConsistent(prefix string) error {
	if t.StruggleMaxCorrect >= t.StruggleWindowAttempts {
		return domainerr.Invalid(prefix+".struggle_max_correct",
			fmt.Sprintf("must be less than struggle_window_attempts (%d), or every student with that many attempts would struggle", t.StruggleWindowAttempts))
	}
	if t.RapidGuessingMinGuesses > t.RapidGuessingWindowAttempts {
		return domainerr.Invalid(prefix+".rapid_guessing_min_guesses",
			fmt.Sprintf("must be at most rapid_guessing_window_attempts (%d)", t.RapidGuessingWindowAttempts))
	}
	return nil
}

// Scaled applies a sensitivity preset to t (see lowFactor and highFactor).
func (t Thresholds) Scaled(s Sensitivity) Thresholds {
	var k float64
	switch s {
	case SensitivityLow:
		k = lowFactor
	case SensitivityHigh:
		k = highFactor
	default:
		return t
	}
	out := t
	for _, f := range thresholdFields {
		switch f.kind {
		case countNeeded:
			p := f.i(&out)
			*p = clampCount(math.Ceil(float64(*p)*k-1e-9), f.max)
		case countAllowed:
			p := f.i(&out)
			*p = clampCount(math.Floor(float64(*p)/k+1e-9), f.max)
		case windowLength:
			switch {
			case f.i != nil:
				p := f.i(&out)
				*p = clampCount(math.Round(float64(*p)/k), f.max)
			case f.f != nil:
				p := f.f(&out)
				*p /= k
			default:
				p := f.d(&out)
				*p = time.Duration(math.Round(float64(*p) / k))
			}
		case timeoutLength:
			p := f.d(&out)
			*p = time.Duration(math.Round(float64(*p) * k))
		}
	}
	return out
}

func clampCount(v, limit float64) int32 {
	if v < 1 {
		v = 1
	}
	if limit > 0 && v > limit {
		v = limit
	}
	return int32(v)
}

// overlay returns t with every non-zero field of o in its place.
func (t Thresholds) overlay(o Thresholds) Thresholds {
	out := t
	for _, f := range thresholdFields {
		switch {
		case f.i != nil:
			if v := *f.i(&o); v != 0 {
				*f.i(&out) = v
			}
		case f.f != nil:
			if v := *f.f(&o); v != 0 {
				*f.f(&out) = v
			}
		default:
			if v := *f.d(&o); v != 0 {
				*f.d(&out) = v
			}
		}
	}
	return out
}

// SetNames lists the API names of the fields of t that are set (non-zero).
func (t Thresholds) SetNames() []string {
	var out []string
	for _, f := range thresholdFields {
		set := false
		switch {
		case f.i != nil:
			set = *f.i(&t) != 0
		case f.f != nil:
			set = *f.f(&t) != 0
		default:
			set = *f.d(&t) != 0
		}
		if set {
			out = append(out, f.name)
		}
	}
	return out
}

// CopyField copies the field named name from src into t (used by field-mask
// updates). It reports false when no threshold has that name.
func (t *Thresholds) CopyField(name string, src Thresholds) bool {
	for _, f := range thresholdFields {
		if f.name != name {
			continue
		}
		switch {
		case f.i != nil:
			*f.i(t) = *f.i(&src)
		case f.f != nil:
			*f.f(t) = *f.f(&src)
		default:
			*f.d(t) = *f.d(&src)
		}
		return true
	}
	return false
}

// Settings are what a classroom chose: a preset, explicit thresholds that
// override it (zero fields are not set), and indicators switched off.
type Settings struct {
	ClassroomID string
	Sensitivity Sensitivity
	Overrides   Thresholds
	Disabled    []Indicator
	UpdatedAt   time.Time
}

// DefaultSettings are what a classroom without settings of its own gets.
func DefaultSettings(classroomID string) Settings {
	return Settings{ClassroomID: classroomID, Sensitivity: SensitivityNormal}
}

// Validate checks the settings as a whole: the preset, each explicit threshold,
// the rules that tie thresholds together (on the effective values), and the
// disabled indicators. Fields are named under prefix ("settings").
func (s Settings) Validate(prefix string) error {
	if s.Sensitivity < SensitivityLow || s.Sensitivity > SensitivityHigh {
		return domainerr.Invalid(prefix+".sensitivity", "must be low, normal or high")
	}
	if err := s.Overrides.Validate(prefix + ".thresholds"); err != nil {
		return err
	}
	if err := s.Effective().Thresholds.checkConsistent(prefix + ".thresholds"); err != nil {
		return err
	}
	for i, ind := range s.Disabled {
		if !ind.Valid() {
			return domainerr.Invalid(fmt.Sprintf("%s.disabled_indicators[%d]", prefix, i), "is not an indicator")
		}
	}
	return nil
}

// Effective resolves the settings into what the detector runs with: the
// defaults scaled by the preset, then the explicit thresholds on top.
func (s Settings) Effective() *Config {
	c := &Config{Thresholds: Defaults().Scaled(s.Sensitivity).overlay(s.Overrides)}
	for _, ind := range s.Disabled {
		if ind.Valid() {
			c.disabled[ind] = true
		}
	}
	return c
}

// Normalize sorts and deduplicates the disabled indicators.
func (s *Settings) Normalize() {
	slices.Sort(s.Disabled)
	s.Disabled = slices.Compact(s.Disabled)
}

// Config is a classroom's resolved detector configuration. It is immutable
// once built; the engine may keep the pointer.
type Config struct {
	Thresholds Thresholds
	disabled   [NumIndicators + 1]bool
}

// Enabled reports whether the indicator reports findings in this classroom.
func (c *Config) Enabled(ind Indicator) bool { return !c.disabled[ind] }

var defaultConfig = DefaultSettings("").Effective()

// DefaultConfig is the configuration of a classroom without settings.
func DefaultConfig() *Config { return defaultConfig }
