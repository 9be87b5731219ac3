package app

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/services/coordinator/internal/fsm"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// fullDisk is a log store that fails every write once full is set, as a
// store on a full disk does.
type fullDisk struct {
	*raft.InmemStore
	full atomic.Bool
}

func (d *fullDisk) StoreLogs(logs []*raft.Log) error {
	if d.full.Load() {
		return syscall.ENOSPC
	}
	return d.InmemStore.StoreLogs(logs)
}

func (d *fullDisk) StoreLog(l *raft.Log) error { return d.StoreLogs([]*raft.Log{l}) }

// A write the leader cannot put in its log is UNAVAILABLE, which clients
// retry, not INTERNAL with the cause hidden in the server log (regression:
// a full disk on the leader answered "internal error").
func TestWriteOnAFullDiskIsUnavailable(t *testing.T) {
	disk := &fullDisk{InmemStore: raft.NewInmemStore()}
	_, trans := raft.NewInmemTransport("")
	rc := raft.DefaultConfig()
	rc.LocalID = "node-1"
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	rc.Logger = nil
	f := fsm.New(state.NewStore(0))
	snaps := raft.NewInmemSnapshotStore()
	r, err := raft.NewRaft(rc, f, disk, disk, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown().Error() })
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}).Error(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); r.State() != raft.Leader; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
	c := New(Config{NodeID: "node-1", LeaseTimeout: 5 * time.Second, HeartbeatInterval: time.Second}, r, snaps, f, zaptest.NewLogger(t))

	disk.full.Store(true)
	_, err = c.apply(context.Background(), fsm.CmdPurgeSessions, fsm.PurgeSessions{Before: time.Now()})
	if domainerr.KindOf(err) != domainerr.Unavailable {
		t.Fatalf("write on a full disk: %v, want UNAVAILABLE", err)
	}
	if !strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		t.Errorf("the error %q does not name the cause", err)
	}
}
