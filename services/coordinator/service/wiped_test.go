package service_test

// Nodes that lose their data directory (issue 17, finding 3). A wiped node
// has forgotten the entries it acknowledged and the votes it granted; it
// must never vote or be counted as the voter it was. It is removed and added
// back as a new member, and a wiped bootstrap node never founds a second
// cluster.

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// ackedLock is a write the cluster acknowledged: a lock granted to a session.
type ackedLock struct {
	key, session string
	token        uint64
}

// grantLocks registers sessions and has each acquire a lock; every grant is
// acknowledged before it returns. A registration whose answer was lost (the
// client retried an UNAVAILABLE that came after the commit, and the repeat
// found the name taken) was never acknowledged: it is made again under
// another name.
func grantLocks(t *testing.T, cl *client.Client, prefix string, n int) []ackedLock {
	t.Helper()
	var out []ackedLock
	for i := range n {
		var s *coordinatorv1.Session
		var tok string
		for attempt := 0; s == nil; attempt++ {
			resp, err := cl.Sessions().RegisterSession(ctxT(t, 10*time.Second), &coordinatorv1.RegisterSessionRequest{
				Name: fmt.Sprintf("%s-%d-%d", prefix, i, attempt), Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: 1,
			})
			switch {
			case status.Code(err) == codes.AlreadyExists && attempt < 3:
				t.Logf("registration %s-%d-%d answered after a retry: %v", prefix, i, attempt, err)
			case err != nil:
				t.Fatalf("register %s-%d: %v", prefix, i, err)
			default:
				s, tok = resp.GetSession(), resp.GetSessionToken()
			}
		}
		l, err := acquire(ctxT(t, 10*time.Second), cl, fmt.Sprintf("%s/%d", prefix, i), s.GetSessionId(), tok, time.Hour, 0)
		if err != nil {
			t.Fatalf("acquire %s/%d: %v", prefix, i, err)
		}
		out = append(out, ackedLock{key: l.GetKey(), session: s.GetSessionId(), token: l.GetFencingToken()})
	}
	return out
}

// checkLocks reads every acknowledged lock back through cl.
func checkLocks(t *testing.T, cl *client.Client, locks []ackedLock) {
	t.Helper()
	for _, l := range locks {
		resp, err := cl.Locks().GetLock(ctxT(t, 10*time.Second), &coordinatorv1.GetLockRequest{Key: l.key})
		if err != nil || resp.GetLock().GetOwnerSessionId() != l.session || resp.GetLock().GetFencingToken() != l.token {
			t.Fatalf("acknowledged lock %s (session %s, token %d) lost: %+v, %v", l.key, l.session, l.token, resp.GetLock(), err)
		}
	}
}

// watchRemoval reports, through the returned func, whether a leader among
// nodes (running now) stopped replicating to id because the configuration
// no longer lists it: its old identity was removed.
func watchRemoval(t *testing.T, id string, nodes ...*coordtest.Node) func() bool {
	t.Helper()
	var removed atomic.Bool
	for _, n := range nodes {
		r := n.Raft()
		if r == nil {
			t.Fatalf("%s does not run", n.ID)
		}
		ch := make(chan raft.Observation, 16)
		obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
			p, ok := o.Data.(raft.PeerObservation)
			return ok && p.Removed && p.Peer.ID == raft.ServerID(id)
		})
		r.RegisterObserver(obs)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range ch {
				removed.Store(true)
			}
		}()
		t.Cleanup(func() {
			r.DeregisterObserver(obs)
			close(ch)
			<-done
		})
	}
	return removed.Load
}

// waitRejoined waits until node was removed, is a voter of the leader's
// configuration again, and its own state has caught up with the leader's.
func waitRejoined(t *testing.T, c *coordtest.Cluster, node *coordtest.Node, removed func() bool) {
	t.Helper()
	waitFor(t, 30*time.Second, node.ID+" never was removed and added back as a voter", func() bool {
		if !removed() {
			return false
		}
		for _, n := range c.Nodes {
			if r := n.Raft(); r != nil && r.State() == raft.Leader {
				f := r.GetConfiguration()
				if f.Error() != nil {
					return false
				}
				voters := 0
				for _, s := range f.Configuration().Servers {
					if s.Suffrage == raft.Voter {
						voters++
					}
				}
				return voters == len(c.Nodes) && slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool {
					return s.ID == raft.ServerID(node.ID) && s.Suffrage == raft.Voter
				})
			}
		}
		return false
	})
	leader := c.Leader()
	var mine, theirs *coordinatorv1.GetClusterStatusResponse
	waitFor(t, 30*time.Second, node.ID+" never caught up", func() bool {
		var err error
		if theirs, err = c.Client(leader).Cluster().GetClusterStatus(ctxT(t, 2*time.Second), &coordinatorv1.GetClusterStatusRequest{}); err != nil {
			return false
		}
		if mine, err = c.Client(node).Cluster().GetClusterStatus(ctxT(t, 2*time.Second), &coordinatorv1.GetClusterStatusRequest{}); err != nil {
			return false
		}
		return mine.GetLeader().GetNodeId() == leader.ID && mine.GetAppliedIndex() >= theirs.GetCommitIndex() &&
			mine.GetSessions() == theirs.GetSessions() && mine.GetLocks() == theirs.GetLocks()
	})
}

// TestWipedFollowerRejoinsAsNewMember: a follower whose data directory is
// lost comes back with the same node id. It is not taken back silently as
// the voter it was: its old identity is removed and it is added again (the
// configuration changes), it catches up by snapshot, and it votes again
// afterwards — the leader is then killed and no acknowledged write is lost.
func TestWipedFollowerRejoinsAsNewMember(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: 10 * time.Minute, SnapshotThreshold: 16, Quiet: true})
	cl := c.Client()
	locks := grantLocks(t, cl, "before", 20)

	wiped := c.Followers()[0]
	c.Kill(wiped)
	c.Wipe(wiped)
	locks = append(locks, grantLocks(t, cl, "while-down", 10)...)
	removed := watchRemoval(t, wiped.ID, c.Leader())

	started := time.Now()
	c.Restart(wiped)
	waitRejoined(t, c, wiped, removed)
	t.Logf("wiped follower removed, added back and caught up %v after restart", time.Since(started).Round(time.Millisecond))
	checkLocks(t, cl, locks)
	locks = append(locks, grantLocks(t, cl, "after", 5)...)

	// The rejoined node counts again: with the old leader gone, it and the
	// remaining node elect a leader that holds every acknowledged write.
	old := c.Leader()
	c.Kill(old)
	leader := c.Leader()
	if leader == old {
		t.Fatal("the killed leader still leads")
	}
	checkLocks(t, c.Client(leader), locks)
}

// TestWipedBootstrapNodeFormsNoSecondCluster: node 1, the one that may
// bootstrap, loses its data while the whole cluster is down and is restarted
// alone with its usual command. It cannot tell this from the cluster's first
// start, so it neither forms a cluster nor elects itself: it accepts no
// write. When the others come back it is removed and added back as a new
// member, and every acknowledged write is there.
func TestWipedBootstrapNodeFormsNoSecondCluster(t *testing.T) {
	c := coordtest.Start(t, 3, coordtest.Options{LeaseTimeout: 10 * time.Minute, SnapshotThreshold: 16, Quiet: true})
	cl := c.Client()
	locks := grantLocks(t, cl, "before", 20)
	c.WaitConverged()
	for _, n := range c.Nodes {
		c.Kill(n)
	}
	first := c.Nodes[0]
	c.Wipe(first)
	c.Restart(first)

	// Alone, for several election timeouts and join rounds: no cluster, no
	// leader, no write.
	alone := c.Client(first)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		f := first.Raft().GetConfiguration()
		if err := f.Error(); err != nil || len(f.Configuration().Servers) != 0 || first.Raft().State() == raft.Leader {
			t.Fatalf("the wiped bootstrap node formed a cluster alone: configuration %v (%v), state %v", f.Configuration().Servers, err, first.Raft().State())
		}
		if _, err := alone.Sessions().RegisterSession(ctxT(t, 300*time.Millisecond), &coordinatorv1.RegisterSessionRequest{
			Name: "alone", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE, MaxConcurrentTasks: 1,
		}); err == nil {
			t.Fatal("the wiped bootstrap node accepted a write alone")
		}
	}

	for _, n := range c.Nodes[1:] {
		c.Restart(n)
	}
	removed := watchRemoval(t, first.ID, c.Nodes[1:]...)
	waitRejoined(t, c, first, removed)
	checkLocks(t, c.Client(), locks)
	checkLocks(t, c.Client(), grantLocks(t, c.Client(), "after", 5))
}
