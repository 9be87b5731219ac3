package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/openapitest"
	"github.com/gaia-platform/gaia/internal/pgtest"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// detectionEnv is a coordinator and metrics replicas with the detector on,
// sharing one database.
type detectionEnv struct {
	db    string
	coord *coordtest.Cluster
	reps  []*metricstest.Metrics
	cli   metricsv1.MetricsServiceClient
	ctx   context.Context
}

func newDetectionEnv(t *testing.T, replicas int) *detectionEnv {
	t.Helper()
	coord := coordtest.Start(t, 1, coordtest.Options{Quiet: true})
	db := pgtest.NewDatabase(t)
	e := &detectionEnv{db: db, coord: coord}
	for range replicas {
		e.reps = append(e.reps, metricstest.Start(t, db, metricstest.Options{Quiet: true, Keys: coord.Keys,
			Detection: &metricstest.Detection{CoordinatorAddrs: coord.Addrs(), Partitions: 8, LockTTL: 2 * time.Second}}))
	}
	e.cli = e.reps[0].Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	return e
}

// waitOwned waits until every partition has an owner in the store.
func (e *detectionEnv) waitOwned(t *testing.T, partitions int) {
	t.Helper()
	p := pgtest.Pool(t, e.db)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := p.QueryRow(e.ctx, `SELECT count(*) FROM metrics.detector_partitions WHERE partitions = $1 AND fencing_token > 0`, partitions).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == partitions {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d detector partitions claimed", n, partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func clickAt(id, classroom, student string, at time.Time, x int32) *metricsv1.UsabilityEvent {
	e := event(id, classroom, student, metricsv1.EventKind_EVENT_KIND_CLICK, at)
	e.X, e.Y = &x, &x
	return e
}

func (e *detectionEnv) record(t *testing.T, events ...*metricsv1.UsabilityEvent) {
	t.Helper()
	resp, err := e.cli.RecordMetrics(e.ctx, &metricsv1.RecordMetricsRequest{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRejected()) > 0 {
		t.Fatalf("rejected: %v", resp.GetRejected())
	}
}

// collect watches from afterID and gathers events until want arrived or
// the deadline passed.
func (e *detectionEnv) collect(t *testing.T, req *metricsv1.WatchFrustrationEventsRequest, want int, within time.Duration) []*metricsv1.FrustrationEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, within)
	defer cancel()
	stream, err := e.cli.WatchFrustrationEvents(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var out []*metricsv1.FrustrationEvent
	for len(out) < want {
		resp, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.DeadlineExceeded || err == io.EOF {
				break
			}
			t.Fatalf("watch: %v", err)
		}
		out = append(out, resp.GetEvent())
	}
	return out
}

func TestDetectionEndToEnd(t *testing.T) {
	e := newDetectionEnv(t, 1)
	e.waitOwned(t, 8)
	now := time.Now().Add(-time.Second)
	// A rage click, a low rating, and a quiet student.
	e.record(t, clickAt("c1", "class-a", "s1", now, 100), clickAt("c2", "class-a", "s1", now.Add(300*time.Millisecond), 102),
		clickAt("c3", "class-a", "s1", now.Add(600*time.Millisecond), 104),
		clickAt("q1", "class-a", "s2", now, 10), clickAt("q2", "class-a", "s2", now.Add(1500*time.Millisecond), 10))
	if _, err := e.cli.SubmitRating(e.ctx, &metricsv1.SubmitRatingRequest{RatingId: "r1", StudentId: "s3", ClassroomId: "class-b",
		AppId: "fractions-app", ItemId: "fractions-7", Rating: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{}, 2, 10*time.Second)
	if len(got) != 2 {
		t.Fatalf("got %d frustration events, want 2: %v", len(got), got)
	}
	t.Logf("both detected within %v of being committed", time.Since(start))
	byInd := map[metricsv1.Indicator]*metricsv1.FrustrationEvent{}
	for _, ev := range got {
		byInd[ev.GetIndicator()] = ev
	}
	rc := byInd[metricsv1.Indicator_INDICATOR_RAGE_CLICK]
	if rc == nil || rc.GetStudentId() != "s1" || rc.GetClassroomId() != "class-a" || rc.GetEvidence()["clicks"] != 3 ||
		rc.GetReasons()[0] != "3 clicks within 0.6 s at the same spot" || rc.GetSeverity() != metricsv1.Severity_SEVERITY_WARNING {
		t.Fatalf("rage click %v", rc)
	}
	lr := byInd[metricsv1.Indicator_INDICATOR_LOW_RATING]
	if lr == nil || lr.GetStudentId() != "s3" || lr.GetSeverity() != metricsv1.Severity_SEVERITY_HIGH || lr.GetReasons()[0] != "rated item fractions-7 1 of 5" {
		t.Fatalf("low rating %v", lr)
	}
	if got[0].GetEventId() >= got[1].GetEventId() {
		t.Fatalf("ids out of order: %d, %d", got[0].GetEventId(), got[1].GetEventId())
	}
	// The list agrees and filters.
	list, err := e.cli.ListFrustrationEvents(e.ctx, &metricsv1.ListFrustrationEventsRequest{ClassroomIds: []string{"class-a"}})
	if err != nil || len(list.GetEvents()) != 1 || list.GetEvents()[0].GetEventId() != rc.GetEventId() {
		t.Fatalf("list class-a: %v %v", list, err)
	}
	list, err = e.cli.ListFrustrationEvents(e.ctx, &metricsv1.ListFrustrationEventsRequest{MinSeverity: metricsv1.Severity_SEVERITY_HIGH})
	if err != nil || len(list.GetEvents()) != 1 || list.GetEvents()[0].GetIndicator() != metricsv1.Indicator_INDICATOR_LOW_RATING {
		t.Fatalf("list high: %v %v", list, err)
	}
	// The classroom's snapshot counts the frustrated student (rollups
	// follow the events a step behind: poll).
	for deadline := time.Now().Add(10 * time.Second); ; {
		snap, err := e.cli.GetClassroomSnapshot(e.ctx, &metricsv1.GetClassroomSnapshotRequest{ClassroomId: "class-a", Minute: rc.GetTriggeredAt()})
		if err == nil && snap.GetSnapshot().GetFrustratedStudents() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot of class-a: %v %v", snap, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Resuming after the first id gives the second only.
	again := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{AfterId: got[0].GetEventId()}, 2, time.Second)
	if len(again) != 1 || again[0].GetEventId() != got[1].GetEventId() {
		t.Fatalf("resumed watch: %v", again)
	}
}

func TestDetectionSettingsAPI(t *testing.T) {
	e := newDetectionEnv(t, 1)
	get, err := e.cli.GetDetectionSettings(e.ctx, &metricsv1.GetDetectionSettingsRequest{ClassroomId: "class-s"})
	if err != nil || !get.GetDefaults() || get.GetSettings().GetThresholds().GetRageClickMinClicks() != 3 ||
		get.GetSettings().GetThresholds().GetAlertCooldown().AsDuration() != 10*time.Minute {
		t.Fatalf("defaults: %v %v", get, err)
	}
	up, err := e.cli.UpdateDetectionSettings(e.ctx, &metricsv1.UpdateDetectionSettingsRequest{
		Settings: &metricsv1.DetectionSettings{ClassroomId: "class-s", Sensitivity: metricsv1.Sensitivity_SENSITIVITY_LOW,
			Thresholds: &metricsv1.DetectionThresholds{IdleTimeout: durationpb.New(time.Minute)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"sensitivity", "thresholds.idle_timeout"}}})
	if err != nil {
		t.Fatal(err)
	}
	th := up.GetSettings().GetThresholds()
	if th.GetRageClickMinClicks() != 5 || th.GetIdleTimeout().AsDuration() != time.Minute || len(up.GetSettings().GetOverriddenThresholds()) != 1 {
		t.Fatalf("low sensitivity with an explicit idle timeout: %v", up.GetSettings())
	}
	get, err = e.cli.GetDetectionSettings(e.ctx, &metricsv1.GetDetectionSettingsRequest{ClassroomId: "class-s"})
	if err != nil || get.GetDefaults() || get.GetSettings().GetSensitivity() != metricsv1.Sensitivity_SENSITIVITY_LOW {
		t.Fatalf("stored: %v %v", get, err)
	}
	bad := []struct {
		req   *metricsv1.UpdateDetectionSettingsRequest
		field string
	}{
		{&metricsv1.UpdateDetectionSettingsRequest{}, "settings"},
		{&metricsv1.UpdateDetectionSettingsRequest{Settings: &metricsv1.DetectionSettings{}}, "settings.classroom_id"},
		{&metricsv1.UpdateDetectionSettingsRequest{Settings: &metricsv1.DetectionSettings{ClassroomId: "c",
			Thresholds: &metricsv1.DetectionThresholds{RageClickMinClicks: -2}}}, "settings.thresholds.rage_click_min_clicks"},
		{&metricsv1.UpdateDetectionSettingsRequest{Settings: &metricsv1.DetectionSettings{ClassroomId: "c",
			Thresholds: &metricsv1.DetectionThresholds{HotspotMinFraction: 1.5}}}, "settings.thresholds.hotspot_min_fraction"},
		{&metricsv1.UpdateDetectionSettingsRequest{Settings: &metricsv1.DetectionSettings{ClassroomId: "c",
			Thresholds: &metricsv1.DetectionThresholds{IdleTimeout: durationpb.New(-time.Second)}}}, "settings.thresholds.idle_timeout"},
		{&metricsv1.UpdateDetectionSettingsRequest{Settings: &metricsv1.DetectionSettings{ClassroomId: "c"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"thresholds.nope"}}}, "update_mask.paths[0]"},
		{&metricsv1.UpdateDetectionSettingsRequest{Settings: &metricsv1.DetectionSettings{ClassroomId: "c",
			DisabledIndicators: []metricsv1.Indicator{42}}}, "settings.disabled_indicators[0]"},
	}
	for _, b := range bad {
		_, err := e.cli.UpdateDetectionSettings(e.ctx, b.req)
		if status.Code(err) != codes.InvalidArgument || !containsField(err, b.field) {
			t.Errorf("%v: got %v, want INVALID_ARGUMENT naming %s", b.req, err, b.field)
		}
	}
	_, err = e.cli.ListFrustrationEvents(e.ctx, &metricsv1.ListFrustrationEventsRequest{Indicators: []metricsv1.Indicator{99}})
	if status.Code(err) != codes.InvalidArgument || !containsField(err, "indicators[0]") {
		t.Errorf("bad indicator filter: %v", err)
	}
}

func containsField(err error, field string) bool {
	st, _ := status.FromError(err)
	return st != nil && (len(st.Message()) > 0) && (contains(st.Message(), field) || fmt.Sprint(st.Details()) != "" && contains(fmt.Sprint(st.Details()), field))
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// A change of settings applies to the classroom's next events, no restart.
func TestDetectionSettingsApplyToNextEvents(t *testing.T) {
	e := newDetectionEnv(t, 1)
	e.waitOwned(t, 8)
	now := time.Now().Add(-2 * time.Second)
	// Two clicks are no rage click by default...
	e.record(t, clickAt("a1", "class-x", "s1", now, 5), clickAt("a2", "class-x", "s1", now.Add(200*time.Millisecond), 5))
	if _, err := e.cli.UpdateDetectionSettings(e.ctx, &metricsv1.UpdateDetectionSettingsRequest{
		Settings:   &metricsv1.DetectionSettings{ClassroomId: "class-x", Thresholds: &metricsv1.DetectionThresholds{RageClickMinClicks: 2}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"thresholds.rage_click_min_clicks"}}}); err != nil {
		t.Fatal(err)
	}
	// ... two more, after the change, are.
	later := time.Now()
	e.record(t, clickAt("b1", "class-x", "s2", later, 5), clickAt("b2", "class-x", "s2", later.Add(200*time.Millisecond), 5))
	got := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: []string{"class-x"}}, 2, 5*time.Second)
	if len(got) != 1 || got[0].GetStudentId() != "s2" {
		t.Fatalf("want one rage click for s2, got %v", got)
	}
}

// Ids that commit out of order never make a watcher skip one: many writers
// at once, watchers resuming from every id they saw.
func TestWatchResumesWithoutLossWhileEventsCommitConcurrently(t *testing.T) {
	e := newDetectionEnv(t, 2)
	e.waitOwned(t, 8)
	const students = 40
	now := time.Now()
	var wg sync.WaitGroup
	for s := range students {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := e.reps[s%2].Client()
			at := now.Add(time.Duration(s) * time.Millisecond)
			class := fmt.Sprintf("class-%d", s%7)
			var evs []*metricsv1.UsabilityEvent
			for i := range 3 {
				evs = append(evs, clickAt(fmt.Sprintf("w%d-%d", s, i), class, fmt.Sprintf("s%d", s), at.Add(time.Duration(i)*100*time.Millisecond), 7))
			}
			if _, err := cli.RecordMetrics(e.ctx, &metricsv1.RecordMetricsRequest{Events: evs}); err != nil {
				t.Error(err)
			}
		}()
	}
	// A watcher that disconnects after every 3 events and resumes.
	seen := map[uint64]bool{}
	var last uint64
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < students && time.Now().Before(deadline) {
		got := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{AfterId: last}, 3, 2*time.Second)
		for _, ev := range got {
			if seen[ev.GetEventId()] || ev.GetEventId() <= last {
				t.Fatalf("event %d again or out of order (after %d)", ev.GetEventId(), last)
			}
			seen[ev.GetEventId()] = true
			last = ev.GetEventId()
		}
	}
	wg.Wait()
	if len(seen) != students {
		t.Fatalf("the resuming watcher saw %d of %d rage clicks", len(seen), students)
	}
	list, err := e.cli.ListFrustrationEvents(e.ctx, &metricsv1.ListFrustrationEventsRequest{PageSize: 1000})
	if err != nil || len(list.GetEvents()) != students {
		t.Fatalf("stored %d, want %d (%v)", len(list.GetEvents()), students, err)
	}
	_ = timestamppb.Now
}

// Snapshots take frustrated students and each hardest item's struggling
// students from the detector.
func TestSnapshotsCountStrugglingStudents(t *testing.T) {
	e := newDetectionEnv(t, 1)
	e.waitOwned(t, 8)
	base := time.Now().Truncate(time.Minute)
	if time.Since(base) > 45*time.Second {
		base = base.Add(time.Minute) // keep the script inside one minute
	}
	var evs []*metricsv1.UsabilityEvent
	for s := range 2 {
		for i := range 10 {
			evs = append(evs, attempt(fmt.Sprintf("st%d-%d", s, i), "class-h", fmt.Sprintf("s%d", s), "fractions-7", false,
				base.Add(time.Duration(s*10+i)*time.Second)))
		}
	}
	e.record(t, evs...)
	// Per student: struggle, wheel spinning, error burst (rapid guessing
	// needs answers < 2 s after an error; these come 1 s apart, so it fires
	// too).
	got := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: []string{"class-h"}}, 8, 10*time.Second)
	if len(got) != 8 {
		t.Fatalf("got %d frustration events: %v", len(got), got)
	}
	// Rollups follow the events a step behind: poll.
	var s *metricsv1.ClassroomSnapshot
	for deadline := time.Now().Add(10 * time.Second); ; {
		snap, err := e.cli.GetClassroomSnapshot(e.ctx, &metricsv1.GetClassroomSnapshotRequest{ClassroomId: "class-h", Minute: timestamppb.New(base)})
		s = snap.GetSnapshot()
		if err == nil && s.GetEvents() == 20 && len(s.GetHardestItems()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot of class-h: %v %v", snap, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.GetFrustratedStudents() != 2 || s.GetHardestItems()[0].GetStrugglingStudents() != 2 {
		t.Fatalf("snapshot %v: want 2 frustrated students, 2 struggling on fractions-7", s)
	}
}

// Idle is a server-side timer: it fires at the last event + the idle
// timeout with nothing more arriving, within a second of it.
func TestIdleFiresWithNoFurtherEvents(t *testing.T) {
	e := newDetectionEnv(t, 1)
	e.waitOwned(t, 8)
	if _, err := e.cli.UpdateDetectionSettings(e.ctx, &metricsv1.UpdateDetectionSettingsRequest{
		Settings:   &metricsv1.DetectionSettings{ClassroomId: "class-i", Thresholds: &metricsv1.DetectionThresholds{IdleTimeout: durationpb.New(3 * time.Second)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"thresholds.idle_timeout"}}}); err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	pv := event("i1", "class-i", "s1", metricsv1.EventKind_EVENT_KIND_PAGE_VIEW, last.Add(-time.Second))
	pv.ItemId, pv.Attrs = "fractions-7", map[string]string{"action": "start"}
	key := event("i2", "class-i", "s1", metricsv1.EventKind_EVENT_KIND_KEYSTROKE, last)
	// A second student finishes the item before going quiet: no idle.
	pv2 := event("i3", "class-i", "s2", metricsv1.EventKind_EVENT_KIND_PAGE_VIEW, last.Add(-time.Second))
	pv2.ItemId, pv2.Attrs = "fractions-7", map[string]string{"action": "start"}
	fin := event("i4", "class-i", "s2", metricsv1.EventKind_EVENT_KIND_PAGE_VIEW, last)
	fin.ItemId, fin.Attrs = "fractions-7", map[string]string{"action": "finish"}
	e.record(t, pv, key, pv2, fin)
	got := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: []string{"class-i"}}, 1, 15*time.Second)
	late := time.Since(last.Add(3 * time.Second))
	if len(got) != 1 || got[0].GetIndicator() != metricsv1.Indicator_INDICATOR_IDLE || got[0].GetStudentId() != "s1" {
		t.Fatalf("want one idle for s1, got %v", got)
	}
	if !got[0].GetTriggeredAt().AsTime().Equal(last.Add(3 * time.Second).Truncate(time.Microsecond)) {
		t.Errorf("idle triggered at %v, want last event + 3 s", got[0].GetTriggeredAt().AsTime())
	}
	t.Logf("idle reported %v after its timeout", late)
	if late > time.Second {
		t.Errorf("idle reported %v after its timeout, want < 1 s", late)
	}
	if more := e.collect(t, &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: []string{"class-i"}, AfterId: got[0].GetEventId()}, 1, 2*time.Second); len(more) != 0 {
		t.Fatalf("more after the idle: %v", more)
	}
}

// The watch over REST: GET /v1/frustration-events:watch streams
// newline-delimited JSON, resumable with after_id.
func TestWatchOverREST(t *testing.T) {
	e := newDetectionEnv(t, 1)
	e.waitOwned(t, 8)
	gw := startGateway(t, e.reps[0].Addr)
	now := time.Now().Add(-time.Second)
	e.record(t, clickAt("r1", "class-r", "s1", now, 9), clickAt("r2", "class-r", "s1", now.Add(100*time.Millisecond), 9),
		clickAt("r3", "class-r", "s1", now.Add(200*time.Millisecond), 9))
	if _, err := e.cli.SubmitRating(e.ctx, &metricsv1.SubmitRatingRequest{RatingId: "rr", StudentId: "s2", ClassroomId: "class-r",
		AppId: "fractions-app", ItemId: "x", Rating: 2}); err != nil {
		t.Fatal(err)
	}
	read := func(after uint64, want int) []map[string]any {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/frustration-events:watch?classroom_ids=class-r&after_id=%d", gw, after), nil)
		req.Header.Set("Authorization", "Bearer "+e.reps[0].AdminToken)
		resp, err := openapitest.Client(t).Do(req) // every line checked against openapi.json
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("watch: %s", resp.Status)
		}
		var out []map[string]any
		dec := json.NewDecoder(resp.Body)
		for len(out) < want {
			var line struct {
				Result map[string]any `json:"result"`
				Error  any            `json:"error"`
			}
			if err := dec.Decode(&line); err != nil {
				t.Fatalf("after %d lines: %v", len(out), err)
			}
			if line.Error != nil {
				t.Fatalf("stream error %v", line.Error)
			}
			out = append(out, line.Result["event"].(map[string]any))
		}
		return out
	}
	got := read(0, 2)
	if got[0]["indicator"] != "INDICATOR_RAGE_CLICK" || got[1]["indicator"] != "INDICATOR_LOW_RATING" {
		t.Fatalf("events over REST: %v", got)
	}
	first, err := strconv.ParseUint(got[0]["event_id"].(string), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	again := read(first, 1)
	if again[0]["event_id"] != got[1]["event_id"] {
		t.Fatalf("resumed after %d: %v", first, again)
	}
}
