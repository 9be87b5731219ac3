package app

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// Broadcaster tells waiters that something changed: Changed returns a
// channel closed at the next change.
type Broadcaster interface {
	Changed() <-chan struct{}
}

// Frustration is the ListFrustrationEvents, WatchFrustrationEvents,
// GetDetectionSettings and UpdateDetectionSettings use cases. History and
// settings stay readable and writable with the detector off.
type Frustration struct {
	events   detect.EventStore
	settings detect.SettingsStore
	changes  Broadcaster
	// PollInterval is how often a watch looks again without a notification
	// (a safety net; notifications wake it at once).
	PollInterval time.Duration
}

// NewFrustration returns the use cases.
func NewFrustration(events detect.EventStore, settings detect.SettingsStore, changes Broadcaster) *Frustration {
	return &Frustration{events: events, settings: settings, changes: changes, PollInterval: time.Second}
}

// List returns one page of events in id order.
func (f *Frustration) List(ctx context.Context, filter detect.ListFilter) ([]detect.FrustrationEvent, error) {
	return f.events.List(ctx, filter)
}

// watchPage is how many events a watch reads at a time.
const watchPage = 500

// Watch sends every event matching filter with an id above filter.AfterID,
// in id order, first those stored, then new ones as they commit, until ctx
// ends or send fails. Ids become visible in id order (the store's writers
// serialise on one lock from drawing an id to commit), so reading after the
// last id sent never skips one. allowed, when not nil, is asked before every
// read whether the caller may still see the filter's classrooms (a teacher's
// may be unassigned meanwhile); its error ends the watch.
func (f *Frustration) Watch(ctx context.Context, filter detect.ListFilter, allowed func(context.Context) error, send func(detect.FrustrationEvent) error) error {
	filter.Limit = watchPage
	for {
		if allowed != nil {
			if err := allowed(ctx); err != nil {
				return err
			}
		}
		changed := f.changes.Changed()
		page, err := f.events.List(ctx, filter)
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := send(e); err != nil {
				return err
			}
			filter.AfterID = e.ID
		}
		if len(page) == watchPage {
			continue
		}
		t := time.NewTimer(f.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// GetSettings returns a classroom's settings and whether they are the
// defaults.
func (f *Frustration) GetSettings(ctx context.Context, classroomID string) (detect.Settings, bool, error) {
	s, own, err := f.settings.Get(ctx, classroomID)
	return s, !own, err
}

// UpdateSettings changes the fields of a classroom's settings named in mask
// ("sensitivity", "thresholds", "thresholds.<name>", "disabled_indicators";
// none replaces everything), validates the result and stores it. A threshold
// set to zero goes back to the preset's value.
func (f *Frustration) UpdateSettings(ctx context.Context, in detect.Settings, mask []string) (detect.Settings, error) {
	cur, _, err := f.settings.Get(ctx, in.ClassroomID)
	if err != nil {
		return detect.Settings{}, err
	}
	next := cur
	if len(mask) == 0 {
		next = in
	}
	for i, path := range mask {
		switch {
		case path == "sensitivity":
			next.Sensitivity = in.Sensitivity
		case path == "thresholds":
			next.Overrides = in.Overrides
		case path == "disabled_indicators":
			next.Disabled = in.Disabled
		case strings.HasPrefix(path, "thresholds."):
			if !next.Overrides.CopyField(strings.TrimPrefix(path, "thresholds."), in.Overrides) {
				return detect.Settings{}, domainerr.Invalid("update_mask.paths["+strconv.Itoa(i)+"]", "no threshold is named "+strings.TrimPrefix(path, "thresholds."))
			}
		default:
			return detect.Settings{}, domainerr.Invalid("update_mask.paths["+strconv.Itoa(i)+"]", "must be sensitivity, thresholds, thresholds.<name> or disabled_indicators, not "+path)
		}
	}
	if next.Sensitivity == 0 {
		next.Sensitivity = detect.SensitivityNormal
	}
	next.ClassroomID = in.ClassroomID
	next.Normalize()
	if err := next.Validate("settings"); err != nil {
		return detect.Settings{}, err
	}
	return f.settings.Put(ctx, next)
}
