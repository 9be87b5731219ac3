// Package detect is the frustration detector's domain: the nine indicators of
// DESIGN.md's "Definitions" (binding, word for word), their thresholds and
// sensitivity presets, the per-student and per-classroom state they need, the
// reorder window, idle timers, suppression while idle, transitions, alert keys
// with their cooldown, severities, and the plain-word reasons and numeric
// evidence of each finding.
//
// It does no I/O and reads no clock: events, ratings and the current wall time
// come in as arguments, findings go out as return values. One Engine holds the
// classrooms of one detector partition and is used by one goroutine at a time;
// the pipeline around it (what reads committed events, owns the partition lock
// and writes frustration events) lives elsewhere and may not reach inside.
//
// # Time
//
// Every rule but idle runs on event time (occurred_at): "within W" means
// now − t < W where now is the occurred_at of the event being judged. Idle is a
// server-side timer (see Engine.Tick); a silence that a later event reveals
// (event-time replay, or a detector that was down) is reported as well, at the
// same trigger time, so the two never disagree.
//
// # Order
//
// Each student's events are judged in occurred_at order (ties in arrival
// order). An event that arrives after a later event of the same student is
// still judged in order if it happened no more than ReorderWindow before that
// student's latest event: the detector keeps the student's state as of
// ReorderWindow ago plus the events since, and replays them with the late
// event in its place. Findings are reported at once (no holding back), so a
// late event can only add a finding that the right order reveals, never take
// back one already reported. Events later than the window are judged when
// they arrive, against the state at that moment.
package detect
