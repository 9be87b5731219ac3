package app

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// memoryStore is an EventStore in memory: it records what was written.
type memoryStore struct {
	mu     sync.Mutex
	stored map[usability.Key]bool
}

func (m *memoryStore) Write(_ context.Context, events []usability.Event, _ time.Time) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]bool, len(events))
	for i := range events {
		k := events[i].Key()
		out[i] = !m.stored[k]
		m.stored[k] = true
	}
	return out, nil
}

func newTestIngest(t *testing.T) (*Ingest, *memoryStore) {
	store := &memoryStore{stored: map[usability.Key]bool{}}
	metrics := NewMetrics(prometheus.NewRegistry(), nil)
	g := NewGroupCommitter(GroupCommitConfig{}, store, metrics, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return NewIngest(IngestConfig{Enabled: true, MaxBatch: 100, Retention: time.Hour}, g, metrics), store
}

// testStart is every test event's time: the same id at the same time is the
// same event.
var testStart = time.Now().Truncate(time.Microsecond)

func hint(id, app, classroom string) usability.Event {
	return usability.Event{EventID: id, AppID: app, ClassroomID: classroom, StudentID: "s", Kind: usability.KindHint, OccurredAt: testStart}
}

// TestAppCredentialPostsOnlyForItsAppAndClassrooms: an app credential that
// posts an event of another app, or of a classroom its credential does not
// list, gets PERMISSION_DENIED for the whole call and nothing is stored.
func TestAppCredentialPostsOnlyForItsAppAndClassrooms(t *testing.T) {
	in, store := newTestIngest(t)
	app := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleApp, AppID: "fractions", Classrooms: []string{"room-1", "room-2"}})
	cases := []struct {
		name   string
		events []usability.Event
		denied string // "" when allowed
	}{
		{"own app and classrooms", []usability.Event{hint("a", "fractions", "room-1"), hint("b", "fractions", "room-2")}, ""},
		{"another app in the batch", []usability.Event{hint("c", "fractions", "room-1"), hint("d", "algebra", "room-1")}, "app_id"},
		{"a classroom the credential does not list", []usability.Event{hint("e", "fractions", "room-3")}, "classroom_id"},
		{"a missing app id is bad data, not a scope breach", []usability.Event{hint("f", "fractions", "room-1"), hint("g", "", "room-1")}, ""},
	}
	for _, c := range cases {
		before := len(store.stored)
		res, err := in.Record(app, c.events)
		if c.denied == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if domainerr.KindOf(err) != domainerr.PermissionDenied || !strings.Contains(err.Error(), c.denied) {
			t.Errorf("%s: got %v (%+v), want PERMISSION_DENIED naming %s", c.name, err, res, c.denied)
		}
		if len(store.stored) != before {
			t.Errorf("%s: %d events stored on a denied call", c.name, len(store.stored)-before)
		}
	}
	// Other roles (and calls served without auth) are not scoped by app.
	if _, err := in.Record(auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleService, Service: "loadgen"}),
		[]usability.Event{hint("h", "algebra", "room-9")}); err != nil {
		t.Errorf("service credential: %v", err)
	}
	if _, err := in.Record(context.Background(), []usability.Event{hint("i", "algebra", "room-9")}); err != nil {
		t.Errorf("no principal: %v", err)
	}
}
