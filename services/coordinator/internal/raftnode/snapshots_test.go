package raftnode

import (
	"os"
	"path/filepath"
	"testing"
)

// Folders of snapshots a crash or a full disk interrupted are removed at
// start; finished snapshots are kept (regression: they piled up, and every
// cluster status call logged one warning per folder).
func TestUnfinishedSnapshotsAreRemovedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snapshots")
	for _, name := range []string{"2-100-1700000000000.tmp", "2-200-1700000000001.tmp", "2-300-1700000000002"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "state.bin"), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := removeUnfinishedSnapshots(dir)
	if err != nil || removed != 2 {
		t.Fatalf("removed %d, %v; want the 2 unfinished ones", removed, err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 || left[0].Name() != "2-300-1700000000002" {
		t.Errorf("left %v, want only the finished snapshot", left)
	}
	if n, err := removeUnfinishedSnapshots(filepath.Join(t.TempDir(), "none")); n != 0 || err != nil {
		t.Errorf("a data folder with no snapshots yet: %d, %v", n, err)
	}
}
