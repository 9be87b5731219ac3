package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
)

type coordinatorProcess struct {
	id, grpcAddr, raftAddr string
	cmd                    *exec.Cmd
	stderr                 *syncBuffer
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestThreeCoordinatorProcesses does what the README tells an operator to do:
// three coordinator processes form a cluster; a session registers, beats and
// locks through a follower; kill -9 of the leader loses no lock and fails no
// session that keeps beating; `gaia cluster status` and the gateway's
// GET /v1/cluster/status show the new leader.
func TestThreeCoordinatorProcesses(t *testing.T) {
	dir := binaries(t)
	data := t.TempDir()
	// The Raft port speaks only mutual TLS: the members share the cluster
	// certificate `gaia certs dev` makes.
	certs := filepath.Join(data, "certs")
	var certsOut, certsErr bytes.Buffer
	if code := run([]string{"certs", "dev", "--dir", certs}, &certsOut, &certsErr); code != 0 {
		t.Fatalf("gaia certs dev exited %d: %s", code, certsErr.String())
	}
	var nodes []*coordinatorProcess
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, &coordinatorProcess{id: fmt.Sprintf("node-%d", i), grpcAddr: freeLoopbackAddr(t), raftAddr: freeLoopbackAddr(t)})
	}
	// The nodes verify and issue with one key pair; the followers join with
	// an admin credential, and the CLI below presents it too.
	keys := authtest.New(t)
	admin := keys.Admin(t)
	adminFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(adminFile, []byte(admin), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tokenEnv, admin)
	start := func(n *coordinatorProcess) {
		env := []string{
			"AUTH_PUBLIC_KEYS_FILE=" + keys.PublicKeysFile,
			"AUTH_SIGNING_KEY_FILE=" + keys.SigningKeyFile,
			"AUTH_TOKEN_FILE=" + adminFile,
			"CLUSTER_ENABLED=true",
			"CLUSTER_NODE_ID=" + n.id,
			"COORDINATOR_LISTEN_ADDR=" + n.grpcAddr,
			"CLUSTER_BIND_ADDR=" + n.raftAddr,
			"CLUSTER_DATA_DIR=" + filepath.Join(data, n.id),
			"SESSION_LEASE_TIMEOUT=2s",
			"SESSION_HEARTBEAT_INTERVAL=300ms",
			"LOG_LEVEL=warn",
			"CLUSTER_TLS_CERT_FILE=" + filepath.Join(certs, "cluster-member.crt"),
			"CLUSTER_TLS_KEY_FILE=" + filepath.Join(certs, "cluster-member.key"),
			"CLUSTER_TLS_CA_FILE=" + filepath.Join(certs, "cluster-ca.crt"),
		}
		// As the README: every node knows all three; node 1 forms the
		// cluster once the others answer that they have none.
		var all []string
		for _, o := range nodes {
			all = append(all, o.grpcAddr)
		}
		env = append(env, "CLUSTER_DISCOVERY_NODES="+strings.Join(all, ","))
		if n == nodes[0] {
			env = append(env, "CLUSTER_BOOTSTRAP=true")
		}
		n.cmd = exec.Command(filepath.Join(dir, "coordinator"))
		n.cmd.Env = cleanEnv(env...)
		n.stderr = &syncBuffer{}
		n.cmd.Stderr = n.stderr
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		start(n)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.cmd.ProcessState == nil {
				_ = n.cmd.Process.Kill()
				_ = n.cmd.Wait()
			}
		}
	})

	status := func(addr string) (*coordinatorv1.GetClusterStatusResponse, error) {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"cluster", "status", "--json", "--coordinator", addr, "--timeout", "2s"}, &stdout, &stderr); code != 0 {
			return nil, fmt.Errorf("gaia cluster status exited %d: %s", code, stderr.String())
		}
		var resp coordinatorv1.GetClusterStatusResponse
		if err := protojson.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &resp); err != nil {
			return nil, err
		}
		return &resp, nil
	}
	var st *coordinatorv1.GetClusterStatusResponse
	waitUntil(t, 30*time.Second, "three voters and a leader", func() bool {
		var err error
		st, err = status(nodes[0].grpcAddr)
		voters := 0
		for _, n := range st.GetNodes() {
			if n.GetSuffrage() == coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER {
				voters++
			}
		}
		return err == nil && voters == 3 && st.GetLeader().GetNodeId() != ""
	})
	leaderID := st.GetLeader().GetNodeId()
	var leader, follower *coordinatorProcess
	for _, n := range nodes {
		if n.id == leaderID {
			leader = n
		} else if follower == nil {
			follower = n
		}
	}

	// Register, beat and lock through a follower only.
	cl, err := client.New(client.Options{Addrs: []string{follower.grpcAddr}, Token: admin})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg, err := cl.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{Name: "claude_1", Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE})
	if err != nil {
		t.Fatalf("register through a follower: %v", err)
	}
	id, tok := reg.GetSession().GetSessionId(), reg.GetSessionToken()
	beater := cl.StartHeartbeat(context.Background(), id, tok, 300*time.Millisecond, nil)
	defer beater.Stop()
	acq, err := cl.Locks().AcquireLock(ctx, &coordinatorv1.AcquireLockRequest{Key: "repo:web/src/app.go", SessionId: id, SessionToken: tok, Ttl: durationpb.New(10 * time.Minute)})
	lock := acq.GetLock()
	if err != nil {
		t.Fatalf("acquire through a follower: %v", err)
	}

	// kill -9 the leader.
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = leader.cmd.Wait()
	waitUntil(t, 30*time.Second, "a new leader", func() bool {
		s, err := status(follower.grpcAddr)
		if err == nil && s.GetLeader().GetNodeId() != "" && s.GetLeader().GetNodeId() != leaderID {
			st = s
			return true
		}
		return false
	})
	newLeader := st.GetLeader().GetNodeId()

	// Well past a lease timeout, the beating session is still active and its
	// lock kept its owner and fencing token.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-beater.Lost():
			t.Fatalf("session lost across the failover: %v", beater.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	got, err := cl.Locks().GetLock(ctx, &coordinatorv1.GetLockRequest{Key: lock.GetKey()})
	if err != nil || got.GetLock().GetOwnerSessionId() != id || got.GetLock().GetFencingToken() != lock.GetFencingToken() {
		t.Fatalf("lock after failover = %+v, %v; was %+v", got.GetLock(), err, lock)
	}
	sess, err := cl.Sessions().GetSession(ctx, &coordinatorv1.GetSessionRequest{SessionId: id})
	if err != nil || sess.GetSession().GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_ACTIVE {
		t.Fatalf("session after failover = %+v, %v", sess.GetSession(), err)
	}

	// The human-readable status names the new leader.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"cluster", "status", "--coordinator", follower.grpcAddr}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), newLeader) {
		t.Fatalf("gaia cluster status (exit %d):\n%s%s", code, stdout.String(), stderr.String())
	}

	// So does the gateway's REST route.
	gwAddr := freeLoopbackAddr(t)
	gw := exec.Command(filepath.Join(dir, "gateway"))
	gw.Env = cleanEnv("GATEWAY_LISTEN_ADDR="+gwAddr, "COORDINATOR_ADDR="+follower.grpcAddr, "LOG_LEVEL=warn", "AUTH_PUBLIC_KEYS_FILE="+keys.PublicKeysFile)
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = gw.Process.Signal(syscall.SIGTERM); _ = gw.Wait() }()
	waitUntil(t, 20*time.Second, "gateway /v1/cluster/status", func() bool {
		resp, err := httpGetQuietAs(t, admin, "http://"+gwAddr+"/v1/cluster/status")
		if err != nil {
			return false
		}
		var body struct {
			Leader struct {
				NodeID string `json:"node_id"`
			} `json:"leader"`
		}
		return json.Unmarshal([]byte(resp), &body) == nil && body.Leader.NodeID == newLeader
	})
}

func waitUntil(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
