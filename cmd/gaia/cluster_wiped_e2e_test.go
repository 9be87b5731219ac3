package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

// TestWipedCoordinatorProcesses runs three coordinator processes with the
// README's environment (every node names all three, node 1 may bootstrap,
// every node presents the admin credential) and loses data directories
// (issue 17, finding 3):
//   - a follower killed, its data directory deleted, restarted with its
//     command: its old identity is removed and it is added back, and it
//     catches up;
//   - all three killed, node 1's data directory deleted, node 1 restarted
//     alone with its command: it forms no cluster, elects no one and takes
//     no write; nodes 2 and 3 restarted, node 1 rejoins as a new member.
//
// Every acknowledged lock is there at the end.
func TestWipedCoordinatorProcesses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "coordinator")
	build := exec.Command("go", "build", "-o", bin, "./services/coordinator")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	certs := filepath.Join(data, "certs")
	var certsOut, certsErr bytes.Buffer
	if code := run([]string{"certs", "dev", "--dir", certs}, &certsOut, &certsErr); code != 0 {
		t.Fatalf("gaia certs dev exited %d: %s", code, certsErr.String())
	}
	keys := authtest.New(t)
	admin := keys.Admin(t)
	adminFile := filepath.Join(data, "admin.token")
	if err := os.WriteFile(adminFile, []byte(admin), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*coordinatorProcess
	var all []string
	for i := 1; i <= 3; i++ {
		n := &coordinatorProcess{id: fmt.Sprintf("node-%d", i), grpcAddr: freeLoopbackAddr(t), raftAddr: freeLoopbackAddr(t)}
		nodes = append(nodes, n)
		all = append(all, n.grpcAddr)
	}
	dataDir := func(n *coordinatorProcess) string { return filepath.Join(data, n.id) }
	start := func(n *coordinatorProcess) {
		t.Helper()
		env := []string{
			"AUTH_PUBLIC_KEYS_FILE=" + keys.PublicKeysFile,
			"AUTH_SIGNING_KEY_FILE=" + keys.SigningKeyFile,
			"AUTH_TOKEN_FILE=" + adminFile,
			"CLUSTER_ENABLED=true",
			"CLUSTER_NODE_ID=" + n.id,
			"CLUSTER_DISCOVERY_NODES=" + strings.Join(all, ","),
			"COORDINATOR_LISTEN_ADDR=" + n.grpcAddr,
			"CLUSTER_BIND_ADDR=" + n.raftAddr,
			"CLUSTER_DATA_DIR=" + dataDir(n),
			"SESSION_LEASE_TIMEOUT=10m", // the sessions here never beat
			"SESSION_HEARTBEAT_INTERVAL=1s",
			"RAFT_SNAPSHOT_THRESHOLD=16",
			"RAFT_SNAPSHOT_INTERVAL=1s",
			"LOG_LEVEL=info",
			"CLUSTER_TLS_CERT_FILE=" + filepath.Join(certs, "cluster-member.crt"),
			"CLUSTER_TLS_KEY_FILE=" + filepath.Join(certs, "cluster-member.key"),
			"CLUSTER_TLS_CA_FILE=" + filepath.Join(certs, "cluster-ca.crt"),
		}
		if n == nodes[0] {
			env = append(env, "CLUSTER_BOOTSTRAP=true")
		}
		n.cmd = exec.Command(bin)
		n.cmd.Env = cleanEnv(env...)
		n.stderr = &syncBuffer{}
		n.cmd.Stderr = n.stderr
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	kill := func(n *coordinatorProcess) {
		t.Helper()
		if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = n.cmd.Wait()
	}
	wipe := func(n *coordinatorProcess) {
		t.Helper()
		if err := os.RemoveAll(dataDir(n)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.cmd != nil && n.cmd.ProcessState == nil {
				_ = n.cmd.Process.Kill()
				_ = n.cmd.Wait()
			}
		}
	})
	clientOf := func(ns ...*coordinatorProcess) *client.Client {
		t.Helper()
		var addrs []string
		for _, n := range ns {
			addrs = append(addrs, n.grpcAddr)
		}
		cl, err := client.New(client.Options{Addrs: addrs, Token: admin})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	status := func(n *coordinatorProcess) *coordinatorv1.GetClusterStatusResponse {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := clientOf(n).Cluster().GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{})
		if err != nil {
			return nil
		}
		return st
	}
	// converged: every node follows one leader with three voters and has
	// applied what it committed, with the same number of live sessions.
	converged := func() bool {
		var leader string
		var commit uint64
		var sessions int64 = -1
		for _, n := range nodes {
			st := status(n)
			if st == nil || st.GetLeader().GetNodeId() == "" {
				return false
			}
			voters := 0
			for _, m := range st.GetNodes() {
				if m.GetSuffrage() == coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER {
					voters++
				}
			}
			if voters != 3 || (leader != "" && st.GetLeader().GetNodeId() != leader) {
				return false
			}
			leader = st.GetLeader().GetNodeId()
			if st.GetAnsweredBy() == leader {
				commit = st.GetCommitIndex()
			}
			if sessions >= 0 && st.GetSessions() != sessions {
				return false
			}
			sessions = st.GetSessions()
		}
		for _, n := range nodes {
			if st := status(n); st == nil || st.GetAppliedIndex() < commit {
				return false
			}
		}
		return true
	}
	type acked struct {
		key, session string
		token        uint64
	}
	var locks []acked
	grant := func(prefix string, count int) {
		t.Helper()
		cl := clientOf(nodes...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := range count {
			reg, err := cl.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
				Name: fmt.Sprintf("%s-%d", prefix, i), Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
			})
			if err != nil {
				t.Fatalf("register %s-%d: %v", prefix, i, err)
			}
			resp, err := cl.Locks().AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{
				Key: fmt.Sprintf("%s/%d", prefix, i), SessionId: reg.GetSession().GetSessionId(), SessionToken: reg.GetSessionToken(), Ttl: durationpb.New(time.Hour),
			})
			if err != nil {
				t.Fatalf("acquire %s/%d: %v", prefix, i, err)
			}
			locks = append(locks, acked{key: resp.GetLock().GetKey(), session: reg.GetSession().GetSessionId(), token: resp.GetLock().GetFencingToken()})
		}
	}
	checkLocks := func() {
		t.Helper()
		cl := clientOf(nodes...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, l := range locks {
			resp, err := cl.Locks().GetLock(ctx, &coordinatorv1.GetLockRequest{Key: l.key})
			if err != nil || resp.GetLock().GetOwnerSessionId() != l.session || resp.GetLock().GetFencingToken() != l.token {
				t.Fatalf("acknowledged lock %s (session %s, token %d) lost: %+v, %v", l.key, l.session, l.token, resp.GetLock(), err)
			}
		}
	}

	for _, n := range nodes {
		start(n)
	}
	waitUntil(t, 30*time.Second, "three voters following one leader", converged)
	grant("first", 20)

	// A follower loses its data directory.
	var follower *coordinatorProcess
	leaderID := status(nodes[0]).GetLeader().GetNodeId()
	for _, n := range nodes[1:] {
		if n.id != leaderID {
			follower = n
			break
		}
	}
	kill(follower)
	wipe(follower)
	grant("while-down", 5)
	restarted := time.Now()
	start(follower)
	waitUntil(t, 30*time.Second, "the wiped follower back and caught up", converged)
	if !strings.Contains(follower.stderr.String(), "removing its old identity") {
		t.Fatalf("the wiped follower was not removed and added back:\n%s", follower.stderr.String())
	}
	t.Logf("wiped %s removed, added back and caught up %v after restart", follower.id, time.Since(restarted).Round(time.Millisecond))
	checkLocks()

	// Everything down; node 1, the bootstrap node, loses its data and is
	// restarted alone with its command.
	for _, n := range nodes {
		kill(n)
	}
	first := nodes[0]
	wipe(first)
	start(first)
	alone := clientOf(first)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if st := status(first); st != nil && (len(st.GetNodes()) != 0 || st.GetLeader().GetNodeId() != "") {
			t.Fatalf("the wiped bootstrap node formed a cluster alone: %v", st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := alone.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
			Name: "alone", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
		})
		cancel()
		if err == nil {
			t.Fatal("the wiped bootstrap node accepted a write alone")
		}
	}
	for _, bad := range []string{"raft cluster bootstrapped", "forming one"} {
		if strings.Contains(first.stderr.String(), bad) {
			t.Fatalf("the wiped bootstrap node logged %q:\n%s", bad, first.stderr.String())
		}
	}
	for _, n := range nodes[1:] {
		start(n)
	}
	waitUntil(t, 30*time.Second, "node 1 back and caught up", converged)
	if !strings.Contains(first.stderr.String(), "removing its old identity") {
		t.Fatalf("the wiped bootstrap node was not removed and added back:\n%s", first.stderr.String())
	}
	checkLocks()
	grant("after", 5)
	checkLocks()
}
