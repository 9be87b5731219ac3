package detect_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

func TestSensitivityPresets(t *testing.T) {
	d := detect.Defaults()
	low, high := d.Scaled(detect.SensitivityLow), d.Scaled(detect.SensitivityHigh)
	cases := []struct {
		name            string
		normal, lo, hi  any
		gotLow, gotHigh any
	}{
		{"rage_click_min_clicks", int32(3), int32(5), int32(3), low.RageClickMinClicks, high.RageClickMinClicks},
		{"rage_click_max_interval", time.Second, 666666667 * time.Nanosecond, 1250 * time.Millisecond, low.RageClickMaxInterval, high.RageClickMaxInterval},
		{"rage_click_max_distance_px", 30.0, 20.0, 37.5, low.RageClickMaxDistancePx, high.RageClickMaxDistancePx},
		{"struggle_window_attempts", int32(10), int32(15), int32(8), low.StruggleWindowAttempts, high.StruggleWindowAttempts},
		{"struggle_max_correct", int32(3), int32(2), int32(3), low.StruggleMaxCorrect, high.StruggleMaxCorrect},
		{"rapid_guessing_window_attempts", int32(10), int32(7), int32(13), low.RapidGuessingWindowAttempts, high.RapidGuessingWindowAttempts},
		{"rapid_guessing_min_guesses", int32(3), int32(5), int32(3), low.RapidGuessingMinGuesses, high.RapidGuessingMinGuesses},
		{"wheel_spinning_min_attempts", int32(10), int32(15), int32(8), low.WheelSpinningMinAttempts, high.WheelSpinningMinAttempts},
		{"error_burst_min_errors", int32(5), int32(8), int32(4), low.ErrorBurstMinErrors, high.ErrorBurstMinErrors},
		{"error_burst_window", time.Minute, 40 * time.Second, 75 * time.Second, low.ErrorBurstWindow, high.ErrorBurstWindow},
		{"keystroke_thrash_min_keystrokes", int32(20), int32(30), int32(16), low.KeystrokeThrashMinKeystrokes, high.KeystrokeThrashMinKeystrokes},
		{"keystroke_thrash_min_deletion_ratio", 0.5, 0.5, 0.5, low.KeystrokeThrashMinDeletionRatio, high.KeystrokeThrashMinDeletionRatio},
		{"idle_timeout", 2 * time.Minute, 3 * time.Minute, 96 * time.Second, low.IdleTimeout, high.IdleTimeout},
		{"hotspot_min_students", int32(3), int32(5), int32(3), low.HotspotMinStudents, high.HotspotMinStudents},
		{"hotspot_window", 5 * time.Minute, 200 * time.Second, 375 * time.Second, low.HotspotWindow, high.HotspotWindow},
		{"alert_cooldown", 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, low.AlertCooldown, high.AlertCooldown},
	}
	for _, tc := range cases {
		if tc.gotLow != tc.lo || tc.gotHigh != tc.hi {
			t.Errorf("%s: low %v high %v, want %v and %v (normal %v)", tc.name, tc.gotLow, tc.gotHigh, tc.lo, tc.hi, tc.normal)
		}
	}
	if got := d.Scaled(detect.SensitivityNormal); got != d {
		t.Error("normal sensitivity must be the defaults")
	}
}

func TestSensitivityChangesWhatFires(t *testing.T) {
	threeClicks := clicks(5, 0, 0, 0.4, 0.8)
	slowClicks := clicks(5, 0, 0, 1.2, 2.4)
	lowCfg := settingsConfig(t, detect.Settings{Sensitivity: detect.SensitivityLow})
	highCfg := settingsConfig(t, detect.Settings{Sensitivity: detect.SensitivityHigh})
	expectNone(t, feed(newEngine(lowCfg), threeClicks...), detect.RageClick)
	expectOne(t, feed(newEngine(detect.DefaultConfig()), threeClicks...), detect.RageClick, 0.8)
	expectNone(t, feed(newEngine(detect.DefaultConfig()), slowClicks...), detect.RageClick)
	expectOne(t, feed(newEngine(highCfg), slowClicks...), detect.RageClick, 2.4)
}

func TestExplicitThresholdsOverrideThePreset(t *testing.T) {
	s := detect.Settings{Sensitivity: detect.SensitivityLow}
	s.Overrides.RageClickMinClicks = 3
	cfg := settingsConfig(t, s)
	if cfg.Thresholds.RageClickMinClicks != 3 || cfg.Thresholds.RageClickMaxInterval != detect.Defaults().Scaled(detect.SensitivityLow).RageClickMaxInterval {
		t.Fatalf("effective %+v", cfg.Thresholds)
	}
	expectOne(t, feed(newEngine(cfg), clicks(5, 0, 0, 0.4, 0.6)...), detect.RageClick, 0.6)
	if got := s.Overrides.SetNames(); len(got) != 1 || got[0] != "rage_click_min_clicks" {
		t.Fatalf("set names %v", got)
	}
}

func TestDisabledIndicatorsDoNotAlert(t *testing.T) {
	s := detect.DefaultSettings("c1")
	s.Disabled = []detect.Indicator{detect.RageClick}
	ds := feed(newEngine(settingsConfig(t, s)), append(clicks(5, 0, 0, 0.4, 0.8), rating(1, "x", 1))...)
	expectNone(t, ds, detect.RageClick)
	expectOne(t, ds, detect.LowRating, 1)
}

func TestSettingsChangeAppliesToTheNextEvents(t *testing.T) {
	cfg := detect.DefaultConfig()
	en := detect.NewEngine(detect.Options{Settings: func(string) *detect.Config { return cfg }})
	expectNone(t, feed(en, clicks(5, 0, 0, 0.4, 0.8)[:2]...), detect.RageClick)
	s := detect.DefaultSettings("c1")
	s.Overrides.RageClickMinClicks = 2
	cfg = settingsConfig(t, s)
	expectOne(t, feed(en, click(100, 5, 5), click(100.5, 5, 5)), detect.RageClick, 100.5)
}

func TestSettingsValidationNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*detect.Settings)
		field string
	}{
		{"negative count", func(s *detect.Settings) { s.Overrides.RageClickMinClicks = -1 }, "settings.thresholds.rage_click_min_clicks"},
		{"fraction above 1", func(s *detect.Settings) { s.Overrides.HotspotMinFraction = 1.5 }, "settings.thresholds.hotspot_min_fraction"},
		{"negative fraction", func(s *detect.Settings) { s.Overrides.KeystrokeThrashMinDeletionRatio = -0.1 }, "settings.thresholds.keystroke_thrash_min_deletion_ratio"},
		{"negative duration", func(s *detect.Settings) { s.Overrides.IdleTimeout = -time.Second }, "settings.thresholds.idle_timeout"},
		{"attempt window over 64", func(s *detect.Settings) { s.Overrides.StruggleWindowAttempts = 65 }, "settings.thresholds.struggle_window_attempts"},
		{"rating above 5", func(s *detect.Settings) { s.Overrides.LowRatingMaxRating = 6 }, "settings.thresholds.low_rating_max_rating"},
		{"max correct not below the window", func(s *detect.Settings) { s.Overrides.StruggleMaxCorrect = 10 }, "settings.thresholds.struggle_max_correct"},
		{"more guesses than the window", func(s *detect.Settings) { s.Overrides.RapidGuessingMinGuesses = 11 }, "settings.thresholds.rapid_guessing_min_guesses"},
		{"no sensitivity", func(s *detect.Settings) { s.Sensitivity = 0 }, "settings.sensitivity"},
		{"unknown indicator", func(s *detect.Settings) { s.Disabled = []detect.Indicator{detect.Idle, 42} }, "settings.disabled_indicators[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := detect.DefaultSettings("c1")
			tc.edit(&s)
			err := s.Validate("settings")
			var de *domainerr.Error
			if !errors.As(err, &de) || de.Kind != domainerr.InvalidArgument || de.Field != tc.field {
				t.Fatalf("got %v, want INVALID_ARGUMENT naming %s", err, tc.field)
			}
		})
	}
	ok := detect.DefaultSettings("c1")
	ok.Overrides = detect.Defaults()
	if err := ok.Validate("settings"); err != nil {
		t.Fatalf("the defaults as explicit thresholds: %v", err)
	}
}
