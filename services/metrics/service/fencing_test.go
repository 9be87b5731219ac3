package service_test

import (
	"errors"
	"slices"
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
	if stored, fenced, err := store.Write(e.ctx, one(old, d)); err != nil || len(stored) != 1 || len(fenced) != 0 {
		t.Fatalf("owner's write: %v %v %v", stored, fenced, err)
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
	if stored, fenced, err := store.Write(e.ctx, one(old, d2)); err != nil || len(stored) != 0 || !slices.Equal(fenced, []int{2}) {
		t.Fatalf("stale write: %v %v %v, want partition 2 fenced", stored, fenced, err)
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
	stored, fenced, err := store.Write(e.ctx, one(newer, d, d2))
	if err != nil || len(fenced) != 0 || len(stored) != 1 || !stored[0].TriggeredAt.Equal(d2.TriggeredAt) {
		t.Fatalf("new owner's write: %v %v %v", stored, fenced, err)
	}
	reported, err := store.Reported(e.ctx, newer, time.Now().Add(-time.Minute))
	if err != nil || len(reported) != 2 {
		t.Fatalf("reported: %v %v", reported, err)
	}

	// Several partitions in one write: the stale owner's partition stores
	// nothing, the others store theirs, with ids in the order given.
	other := detect.PartitionRef{Partitions: 4, Partition: 3, Token: 11, Owner: "new"}
	if _, err := store.Claim(e.ctx, other); err != nil {
		t.Fatal(err)
	}
	d3, d4, d5 := d, d, d
	d3.TriggeredAt = d.TriggeredAt.Add(2 * time.Hour)
	d4.ClassroomID, d4.StudentID, d4.Reasons, d4.Evidence = "c2", "s2", nil, nil
	d5.ClassroomID, d5.Reasons = "c3", []string{"one, with a comma", `and "quotes"`}
	stored, fenced, err = store.Write(e.ctx, []detect.PartitionFindings{
		{Ref: other, Detections: []detect.Detection{d4, d5}},
		{Ref: old, Detections: []detect.Detection{d3}},
		{Ref: newer, Detections: []detect.Detection{d3}},
	})
	if err != nil || !slices.Equal(fenced, []int{2}) || len(stored) != 3 {
		t.Fatalf("write of three partitions: %v %v %v", stored, fenced, err)
	}
	if stored[0].ClassroomID != "c2" || stored[1].ClassroomID != "c3" || stored[2].ClassroomID != "c" ||
		!(stored[0].ID < stored[1].ID && stored[1].ID < stored[2].ID) {
		t.Fatalf("ids not in the order given: %+v", stored)
	}
	listed, err := store.List(e.ctx, detect.ListFilter{ClassroomIDs: []string{"c2", "c3"}})
	if err != nil || len(listed) != 2 || len(listed[0].Reasons) != 0 || !slices.Equal(listed[1].Reasons, d5.Reasons) {
		t.Fatalf("stored reasons: %+v %v", listed, err)
	}
}

// one is a write of one partition's detections.
func one(p detect.PartitionRef, ds ...detect.Detection) []detect.PartitionFindings {
	return []detect.PartitionFindings{{Ref: p, Detections: ds}}
}
