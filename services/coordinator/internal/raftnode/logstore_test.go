package raftnode

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.uber.org/zap"
)

// boltEraLog is entry i of the stores the tests write as earlier versions did.
func boltEraLog(i uint64) *raft.Log {
	typ := raft.LogCommand
	if i%50 == 0 {
		typ = raft.LogConfiguration
	}
	return &raft.Log{
		Index:      i,
		Term:       1 + i/100,
		Type:       typ,
		Data:       []byte(fmt.Sprintf("entry %d %s", i, bytes.Repeat([]byte{'x'}, int(i%97)))),
		Extensions: []byte(fmt.Sprintf("ext-%d", i)),
		AppendedAt: time.Unix(1_700_000_000+int64(i), 0).UTC(),
	}
}

// writeBoltStore writes raft.db in dir as raft-boltdb did for earlier
// versions: entries first..last and, when vote is set, a vote.
func writeBoltStore(t *testing.T, dir string, first, last uint64, term uint64, vote string) {
	t.Helper()
	s, err := raftboltdb.NewBoltStore(filepath.Join(dir, boltFile))
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := first; i <= last; i++ {
		logs = append(logs, boltEraLog(i))
	}
	if len(logs) > 0 {
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	if term > 0 {
		if err := s.SetUint64([]byte("CurrentTerm"), term); err != nil {
			t.Fatal(err)
		}
	}
	if vote != "" {
		if err := s.SetUint64([]byte("LastVoteTerm"), term); err != nil {
			t.Fatal(err)
		}
		if err := s.Set([]byte("LastVoteCand"), []byte(vote)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func openTestLogStore(t *testing.T, dir string) raftStore {
	t.Helper()
	s, err := openLogStore(dir, hclog.NewNullLogger(), zap.NewNop())
	if err != nil {
		t.Fatalf("open log store: %v", err)
	}
	return s
}

// checkMigrated checks that s holds entries first..last as written, and
// the term and vote.
func checkMigrated(t *testing.T, s raftStore, first, last, term uint64, vote string) {
	t.Helper()
	if got, err := s.FirstIndex(); err != nil || got != first {
		t.Fatalf("first index %d (%v), want %d", got, err, first)
	}
	if got, err := s.LastIndex(); err != nil || got != last {
		t.Fatalf("last index %d (%v), want %d", got, err, last)
	}
	for i := first; i <= last; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := boltEraLog(i)
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
			!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d is %+v, want %+v", i, got, *want)
		}
	}
	if got, err := s.GetUint64([]byte("CurrentTerm")); err != nil || got != term {
		t.Fatalf("current term %d (%v), want %d", got, err, term)
	}
	gotVote, _ := s.Get([]byte("LastVoteCand"))
	if string(gotVote) != vote {
		t.Fatalf("last vote %q, want %q", gotVote, vote)
	}
	if vote != "" {
		if got, err := s.GetUint64([]byte("LastVoteTerm")); err != nil || got != term {
			t.Fatalf("last vote term %d (%v), want %d", got, err, term)
		}
	}
}

func TestOpenLogStoreMovesARaftDBIntoTheWAL(t *testing.T) {
	dir := t.TempDir()
	// A compacted log (it starts after a snapshot), several terms and a vote.
	writeBoltStore(t, dir, 4097, 6000, 61, "node-2")

	s := openTestLogStore(t, dir)
	checkMigrated(t, s, 4097, 6000, 61, "node-2")
	if _, err := os.Stat(filepath.Join(dir, boltFile)); !os.IsNotExist(err) {
		t.Errorf("%s is still there after the migration (%v)", boltFile, err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltMigratedFile)); err != nil {
		t.Errorf("the old store was not kept as %s: %v", boltMigratedFile, err)
	}
	if existing, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore()); err != nil || !existing {
		t.Errorf("raft finds no existing state in the migrated store (%v, %v): the node would count as wiped", existing, err)
	}
	// The WAL takes new entries after the migrated ones.
	if err := s.StoreLogs([]*raft.Log{boltEraLog(6001), boltEraLog(6002)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The next start opens the WAL as it is.
	s = openTestLogStore(t, dir)
	defer s.Close()
	checkMigrated(t, s, 4097, 6002, 61, "node-2")
}

func TestOpenLogStoreMigratesANodeThatNeverVoted(t *testing.T) {
	dir := t.TempDir()
	// A follower that never voted has no LastVoteTerm or LastVoteCand.
	writeBoltStore(t, dir, 1, 10, 3, "")
	s := openTestLogStore(t, dir)
	defer s.Close()
	checkMigrated(t, s, 1, 10, 3, "")
}

func TestOpenLogStoreMigratesAnEmptyRaftDB(t *testing.T) {
	dir := t.TempDir()
	writeBoltStore(t, dir, 1, 0, 0, "")
	s := openTestLogStore(t, dir)
	defer s.Close()
	if existing, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore()); err != nil || existing {
		t.Errorf("an empty raft.db gave existing state %v (%v)", existing, err)
	}
}

// A migration cut short by a crash left wal.migrating behind and raft.db in
// charge: the next start begins again from raft.db.
func TestOpenLogStoreRedoesAnUnfinishedMigration(t *testing.T) {
	dir := t.TempDir()
	writeBoltStore(t, dir, 1, 500, 9, "node-1")
	partial := filepath.Join(dir, walMigratingDir)
	if err := os.MkdirAll(partial, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "00000000000000000001-0000000000000001.wal"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTestLogStore(t, dir)
	defer s.Close()
	checkMigrated(t, s, 1, 500, 9, "node-1")
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("%s is still there (%v)", walMigratingDir, err)
	}
}

// A crash after the WAL was renamed into place but before raft.db was
// renamed aside: the WAL is the store, and raft.db is not copied again over
// entries written since.
func TestOpenLogStoreFinishesAMigrationCutShortAfterTheRename(t *testing.T) {
	dir := t.TempDir()
	writeBoltStore(t, dir, 1, 100, 2, "")
	s := openTestLogStore(t, dir)
	if err := s.StoreLogs([]*raft.Log{boltEraLog(101)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, boltMigratedFile), filepath.Join(dir, boltFile)); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	defer s.Close()
	checkMigrated(t, s, 1, 101, 2, "")
	if _, err := os.Stat(filepath.Join(dir, boltFile)); !os.IsNotExist(err) {
		t.Errorf("%s is still there (%v)", boltFile, err)
	}
}

// A follower whose log conflicts with a new leader's clears its log's tail
// (DeleteRange up to the last index) and appends the leader's entries; a
// crash after that must leave a log that opens. raft-wal v0.4.0 marked the
// truncated segment sealed without writing its index block, and the next
// start panicked in raft.NewRaft ("sealed segment has no index block"),
// found by the chaos suite; v0.4.1 seals it (hashicorp/raft-wal#31).
func TestLogStoreReopensAfterATailTruncation(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	var logs []*raft.Log
	for i := uint64(1); i <= 100; i++ {
		logs = append(logs, boltEraLog(i))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(91, 100); err != nil {
		t.Fatal(err)
	}
	replaced := []*raft.Log{boltEraLog(91), boltEraLog(92)}
	for _, l := range replaced {
		l.Term = 99
	}
	if err := s.StoreLogs(replaced); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestLogStore(t, dir)
	defer s.Close()
	if got, err := s.LastIndex(); err != nil || got != 92 {
		t.Fatalf("last index %d (%v) after the truncation, want 92", got, err)
	}
	for i := uint64(1); i <= 92; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d after reopening: %v", i, err)
		}
		if want := uint64(99); i > 90 && l.Term != want {
			t.Fatalf("entry %d has term %d, want the new leader's %d", i, l.Term, want)
		}
	}
}
