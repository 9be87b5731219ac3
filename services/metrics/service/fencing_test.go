package service_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gaia-platform/gaia/services/metrics/internal/adapters"
	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
	"github.com/gaia-platform/gaia/services/metrics/metricstest"
)

// A stale owner's writes are refused by the store itself, whatever the
// owner believes: findings, checkpoints and claims all carry the token.
func TestStoreRefusesAStaleOwner(t *testing.T) {
	e := newEnv(t, metricstest.Options{Quiet: true})
	store := adapters.NewFrustrationPostgresStore(e.pool(t))
	old := detect.PartitionRef{Partitions: 4, Partition: 2, Token: 5, Owner: "old"}
	cp, err := store.Claim(e.ctx, old)
	if err != nil || cp.State != nil || cp.Events.Ord != -1 {
		t.Fatalf("first claim: %+v %v", cp, err)
	}
	d := detect.Detection{ClassroomID: "c", StudentID: "s", Indicator: detect.RageClick, Severity: detect.Warning,
		Reasons: []string{"3 clicks"}, Evidence: map[string]float64{"clicks": 3}, TriggeredAt: time.Now().UTC().Truncate(time.Microsecond)}
	if stored, err := store.Write(e.ctx, old, []detect.Detection{d}); err != nil || len(stored) != 1 {
		t.Fatalf("owner's write: %v %v", stored, err)
	}
	if err := store.SaveCheckpoint(e.ctx, old, detect.Checkpoint{Events: cp.Events, RatingsXid: cp.RatingsXid, State: []byte{1}}); err != nil {
		t.Fatal(err)
	}

	newer := old
	newer.Token, newer.Owner = 9, "new"
	cp2, err := store.Claim(e.ctx, newer)
	if err != nil || len(cp2.State) != 1 {
		t.Fatalf("takeover claim: %+v %v", cp2, err)
	}
	d2 := d
	d2.TriggeredAt = d.TriggeredAt.Add(time.Hour)
	if _, err := store.Write(e.ctx, old, []detect.Detection{d2}); !errors.Is(err, detect.ErrFenced) {
		t.Fatalf("stale write: %v, want ErrFenced", err)
	}
	if err := store.SaveCheckpoint(e.ctx, old, detect.Checkpoint{State: []byte{2}}); !errors.Is(err, detect.ErrFenced) {
		t.Fatalf("stale checkpoint: %v, want ErrFenced", err)
	}
	between := old
	between.Token = 7
	if _, err := store.Claim(e.ctx, between); !errors.Is(err, detect.ErrFenced) {
		t.Fatalf("claim with an older token: %v, want ErrFenced", err)
	}
	// The same finding again (a replay) writes nothing; the new owner's own
	// findings are stored.
	stored, err := store.Write(e.ctx, newer, []detect.Detection{d, d2})
	if err != nil || len(stored) != 1 || !stored[0].TriggeredAt.Equal(d2.TriggeredAt) {
		t.Fatalf("new owner's write: %v %v", stored, err)
	}
	reported, err := store.Reported(e.ctx, newer, time.Now().Add(-time.Minute))
	if err != nil || len(reported) != 2 {
		t.Fatalf("reported: %v %v", reported, err)
	}
}
