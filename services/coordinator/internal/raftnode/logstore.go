package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/migrate"
	"go.uber.org/zap"
)

// The Raft log and stable store is hashicorp/raft-wal: append-only segment
// files, one fsync per batch of entries. It replaced raft-boltdb, whose
// B-tree commit costs two fsyncs per batch (pages, then the meta page); on
// this project's benchmark machine the wait for those fsyncs was what bounded
// a registration (with fsync off, registrations ran 1.9x as fast), and the
// WAL brought registrations from 0.69x to about 1.0x of etcd's puts
// (docs/BENCHMARKS.md, "Against etcd"). Consul ships the same library for
// the same reason. The stable store (term and vote) lives in the WAL's own
// small bolt file, wal-meta.db; it is written only when the term changes.
const (
	// walDir holds the segment files and wal-meta.db.
	walDir = "wal"
	// walSegmentSize is the size each segment file is preallocated to.
	// Entries are small (a registration is under 200 bytes), so one
	// segment holds tens of thousands and rotation (a new file and a
	// meta-db commit) is rare; smaller than raft-wal's 64 MiB default so
	// that an idle node costs little disk and old segments are freed soon
	// after a snapshot.
	walSegmentSize = 8 << 20
	// boltFile is the raft-boltdb store of earlier versions, migrated into
	// the WAL at the first start and then renamed to boltMigratedFile.
	boltFile         = "raft.db"
	boltMigratedFile = "raft.db.migrated"
	// walMigratingDir is where a migration builds the WAL before renaming
	// it into place, so that a crash part-way leaves the bolt store in
	// charge and the next start migrates again from scratch.
	walMigratingDir = "wal.migrating"
	// migrateBatchBytes is how much log data one append of the migration
	// carries.
	migrateBatchBytes = 4 << 20
)

// raftStore is what Raft is given as its log and stable store.
type raftStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// openLogStore opens the node's WAL under dataDir, first moving the entries
// and the term of an earlier version's raft.db into it.
func openLogStore(dataDir string, hl hclog.Logger, log *zap.Logger) (raftStore, error) {
	if err := migrateBoltStore(dataDir, hl, log); err != nil {
		return nil, fmt.Errorf("migrate %s to the WAL: %w", filepath.Join(dataDir, boltFile), err)
	}
	return openWAL(filepath.Join(dataDir, walDir), hl)
}

// walStore is the WAL with its meta store: wal.WAL.Close leaves its meta
// store (a bolt file, locked while open) open, and a node started again in
// the same process would wait forever for that lock.
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

// Close implements raftStore.
func (s walStore) Close() error {
	return errors.Join(s.WAL.Close(), s.meta.Close())
}

func openWAL(dir string, hl hclog.Logger) (walStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return walStore{}, err
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta), wal.WithSegmentSize(walSegmentSize), wal.WithLogger(hl.Named("wal")))
	if err != nil {
		return walStore{}, errors.Join(err, meta.Close())
	}
	return walStore{WAL: w, meta: meta}, nil
}

// migrateBoltStore moves raft.db, when there is one, into a new WAL: every
// log entry and the keys Raft keeps in its stable store (the current term,
// the last vote and its candidate). The WAL is built in wal.migrating,
// synced, and renamed to wal; only then is raft.db renamed aside, so that a
// crash at any step either leaves the bolt store in charge (and the next
// start begins again) or finds the finished WAL.
func migrateBoltStore(dataDir string, hl hclog.Logger, log *zap.Logger) error {
	boltPath := filepath.Join(dataDir, boltFile)
	if _, err := os.Stat(boltPath); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	walPath := filepath.Join(dataDir, walDir)
	if _, err := os.Stat(walPath); err == nil {
		// The WAL was renamed into place, then the process stopped before
		// raft.db was renamed aside: the migration is done.
		return finishMigration(dataDir, log)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	tmp := filepath.Join(dataDir, walMigratingDir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove an unfinished migration: %w", err)
	}
	src, err := raftboltdb.New(raftboltdb.Options{Path: boltPath})
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	dst, err := openWAL(tmp, hl)
	if err != nil {
		return err
	}
	first, err := src.FirstIndex()
	if err != nil {
		_ = dst.Close()
		return err
	}
	last, err := src.LastIndex()
	if err != nil {
		_ = dst.Close()
		return err
	}
	log.Info("moving the Raft log from raft-boltdb into the WAL", zap.Uint64("first_index", first), zap.Uint64("last_index", last))
	// An empty bolt store has nothing to copy (CopyLogs would ask for entry 0).
	if last > 0 {
		if err := migrate.CopyLogs(context.Background(), dst, src, migrateBatchBytes, nil); err != nil {
			_ = dst.Close()
			return err
		}
	}
	if err := copyStable(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	// The WAL synced every append and Set above before returning.
	if err := dst.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, walPath); err != nil {
		return err
	}
	if err := syncDir(dataDir); err != nil {
		return err
	}
	return finishMigration(dataDir, log)
}

// copyStable copies the keys hashicorp/raft keeps in its stable store. A key
// the node never wrote (a node that never voted has no LastVoteCand) stays
// unset, where raft-wal's migrate.CopyStable would fail on it.
func copyStable(dst, src raft.StableStore) error {
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := src.GetUint64([]byte(k))
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		if err := dst.SetUint64([]byte(k), v); err != nil {
			return fmt.Errorf("write %s: %w", k, err)
		}
	}
	v, err := src.Get([]byte("LastVoteCand"))
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read LastVoteCand: %w", err)
	}
	if err := dst.Set([]byte("LastVoteCand"), v); err != nil {
		return fmt.Errorf("write LastVoteCand: %w", err)
	}
	return nil
}

// finishMigration renames raft.db aside once the WAL holds its contents. It
// is kept, not removed, so that an operator can go back to the previous
// version (after removing wal/) until they delete it.
func finishMigration(dataDir string, log *zap.Logger) error {
	if err := os.Rename(filepath.Join(dataDir, boltFile), filepath.Join(dataDir, boltMigratedFile)); err != nil {
		return err
	}
	if err := syncDir(dataDir); err != nil {
		return err
	}
	log.Info("the Raft log is now in the WAL; the old store is kept and can be deleted",
		zap.String("old_store", filepath.Join(dataDir, boltMigratedFile)))
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
