package app

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// IngestConfig are the rules of RecordMetrics.
type IngestConfig struct {
	// Enabled is USABILITY_METRICS_ENABLED.
	Enabled bool
	// MaxBatch is USABILITY_MAX_BATCH.
	MaxBatch int
	// Retention is USABILITY_RETENTION: older events are rejected.
	Retention time.Duration
}

// Ingest is the RecordMetrics use case.
type Ingest struct {
	cfg     IngestConfig
	writer  *GroupCommitter
	metrics *Metrics
	now     func() time.Time
}

// NewIngest returns the use case.
func NewIngest(cfg IngestConfig, writer *GroupCommitter, metrics *Metrics) *Ingest {
	return &Ingest{cfg: cfg, writer: writer, metrics: metrics, now: time.Now}
}

// Rejected is one event that was not stored.
type Rejected struct {
	Index   int
	EventID string
	// Field is the request's spelling, such as "events[3].student_id".
	Field  string
	Reason string
}

// RecordResult says what happened to a batch.
type RecordResult struct {
	Accepted   int
	Duplicates int
	Rejected   []Rejected
}

// Record validates every event, stores the valid ones through the group
// committer and answers once they are committed. One bad event never sinks
// the others; an event already stored (same classroom, app, event id and
// time) is a duplicate and changes nothing.
func (in *Ingest) Record(ctx context.Context, events []usability.Event) (RecordResult, error) {
	var res RecordResult
	if !in.cfg.Enabled {
		return res, usability.ErrIngestDisabled
	}
	switch {
	case len(events) == 0:
		return res, domainerr.Invalid("events", "must hold at least one event")
	case len(events) > in.cfg.MaxBatch:
		return res, domainerr.Invalid("events", fmt.Sprintf("must hold at most %d events (USABILITY_MAX_BATCH); split the batch", in.cfg.MaxBatch))
	}
	// An app credential posts for its own app (and its classrooms, when the
	// credential lists them). An event outside that scope is not bad data but
	// a misused credential: the whole call is PERMISSION_DENIED and nothing is
	// stored. The gRPC interceptor applies the same rule from the policy
	// table before the call gets here; this check keeps it true wherever
	// Record is called from.
	for i := range events {
		if events[i].AppID == "" {
			continue // rejected by validation below
		}
		if err := auth.RequireApp(ctx, events[i].AppID, events[i].ClassroomID); err != nil {
			return res, err
		}
	}
	in.metrics.batchEvents.Observe(float64(len(events)))
	w := usability.Window{Now: in.now(), Retention: in.cfg.Retention}
	valid := make([]usability.Event, 0, len(events))
	for i := range events {
		e := &events[i]
		if p := e.Validate(w); p != nil {
			res.Rejected = append(res.Rejected, Rejected{Index: i, EventID: printableID(e.EventID), Field: fmt.Sprintf("events[%d].%s", i, p.Field), Reason: p.Reason})
			in.metrics.rejected.WithLabelValues(fieldLabel(p.Field)).Inc()
			continue
		}
		valid = append(valid, *e)
	}
	in.metrics.events.WithLabelValues("rejected").Add(float64(len(res.Rejected)))
	if len(valid) == 0 {
		// Nothing of the batch could be stored: the request as a whole is
		// bad, and the answer names the first field at fault.
		first := res.Rejected[0]
		return RecordResult{}, domainerr.Invalid(first.Field, fmt.Sprintf("%s (all %d events of the batch were rejected; nothing was stored)", first.Reason, len(events)))
	}
	inserted, err := in.writer.Write(ctx, valid)
	if err != nil {
		return RecordResult{}, err
	}
	for _, ok := range inserted {
		if ok {
			res.Accepted++
		} else {
			res.Duplicates++
		}
	}
	in.metrics.events.WithLabelValues("accepted").Add(float64(res.Accepted))
	in.metrics.events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	return res, nil
}

// fieldLabel keeps the label's values a small set: "attrs[key]" → "attrs".
func fieldLabel(field string) string {
	if i := strings.IndexByte(field, '['); i >= 0 {
		return field[:i]
	}
	return field
}

// printableID echoes an event id back only when it is short enough to be
// useful; a 1 MB id is not repeated in the answer.
func printableID(id string) string {
	if len(id) > usability.MaxIDLen*4 || !utf8.ValidString(id) {
		return ""
	}
	return id
}
