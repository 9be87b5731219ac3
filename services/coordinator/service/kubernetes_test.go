package service_test

// The coordinator as deploy/k8s runs it: a StatefulSet of three pods whose
// node ids and Raft and gRPC addresses are their DNS names
// (coordinator-N.coordinator-raft.gaia.svc), pod 0 named as the one that may
// bootstrap, everyone given the same discovery list. A resolver the test
// controls stands in for the cluster DNS: a pod's name points at a loopback
// address of its own (127.0.N+1.G, a new one each time the pod is
// recreated, as pod IPs change), and vanishes when the pod is deleted. Every
// pod listens on the same ports, as in Kubernetes.
//
// The rolling restart and the dead-server cleanup run with real processes,
// started from the rendered manifests and stopped by real signals, in
// deploy/k8s/coordinator_processes_test.go. What stays here looks inside a
// node (its Raft, its readiness reason) or copies its snapshot folder:
// readiness and metrics, and the restore from one snapshot. It is one file
// of more than 500 lines on purpose: both drive the same simulated
// StatefulSet, DNS and pod lifecycle defined here, and read best beside it.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gaia-platform/gaia/internal/auth/authtest"
	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	"github.com/gaia-platform/gaia/internal/testnet"
	"github.com/gaia-platform/gaia/internal/tlsconfig"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	"github.com/gaia-platform/gaia/services/coordinator/service"
)

// podDNS is the cluster DNS: pod name → pod IP.
type podDNS struct {
	mu  sync.Mutex
	ips map[string]string
}

func (d *podDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ip, ok := d.ips[strings.TrimSuffix(host, ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []string{ip}, nil
}

func (d *podDNS) set(name, ip string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ip == "" {
		delete(d.ips, name)
		return
	}
	d.ips[name] = ip
}

func (d *podDNS) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := d.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	var dialer net.Dialer
	return dialer.DialContext(ctx, "tcp", net.JoinHostPort(ips[0], port))
}

type pod struct {
	ordinal int
	name    string
	ip      string
	dir     string
	gen     int

	mu      sync.Mutex
	svc     *service.Service
	cancel  context.CancelFunc
	done    chan error
	running bool
}

// statefulSet plays the StatefulSet controller and the kubelet.
type statefulSet struct {
	t                  *testing.T
	dns                *podDNS
	pods               []*pod
	grpcPort, raftPort int
	deadServerGrace    string
	discovery          string
	bootstrapNodeID    string
	member             tlsconfig.Files // the Raft member certificate every pod mounts
	keys               *authtest.Keys  // the credential keys every pod mounts
	admin, adminFile   string          // the admin credential pods join with, and its file
}

func newStatefulSet(t *testing.T, replicas int, deadServerGrace string) *statefulSet {
	ss := &statefulSet{t: t, dns: &podDNS{ips: map[string]string{}}, deadServerGrace: deadServerGrace}
	ss.grpcPort, ss.raftPort = freePort(t), freePort(t)
	dir := t.TempDir()
	pki, err := tlsconfig.WriteDev(filepath.Join(dir, "certs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ss.member = pki.ClusterMember()
	ss.keys = authtest.New(t)
	ss.admin = ss.keys.Admin(t)
	ss.adminFile = filepath.Join(dir, "admin.token")
	if err := os.WriteFile(ss.adminFile, []byte(ss.admin), 0o600); err != nil {
		t.Fatal(err)
	}
	var disc []string
	for i := range replicas {
		name := fmt.Sprintf("coordinator-%d.coordinator-raft.gaia.svc", i)
		ss.pods = append(ss.pods, &pod{ordinal: i, name: name, dir: filepath.Join(dir, strconv.Itoa(i))})
		disc = append(disc, net.JoinHostPort(name, strconv.Itoa(ss.grpcPort)))
	}
	ss.discovery = strings.Join(disc, ",")
	ss.bootstrapNodeID = ss.pods[0].name
	t.Cleanup(func() {
		for _, p := range ss.pods {
			ss.stop(p)
		}
	})
	return ss
}

func freePort(t *testing.T) int {
	t.Helper()
	return testnet.FreePort(t)
}

// env is the pod's environment as the StatefulSet gives it (see
// deploy/k8s/services/coordinator/statefulset.yaml), with the listen
// addresses on the pod's own IP instead of every interface.
func (ss *statefulSet) env(p *pod) map[string]string {
	return map[string]string{
		"CLUSTER_ENABLED":                    "true",
		"CLUSTER_NODE_ID":                    p.name,
		"CLUSTER_BOOTSTRAP_NODE_ID":          ss.bootstrapNodeID,
		"CLUSTER_DISCOVERY_NODES":            ss.discovery,
		"COORDINATOR_LISTEN_ADDR":            net.JoinHostPort(p.ip, strconv.Itoa(ss.grpcPort)),
		"COORDINATOR_ADVERTISE_ADDR":         net.JoinHostPort(p.name, strconv.Itoa(ss.grpcPort)),
		"CLUSTER_BIND_ADDR":                  net.JoinHostPort(p.ip, strconv.Itoa(ss.raftPort)),
		"CLUSTER_ADVERTISE_ADDR":             net.JoinHostPort(p.name, strconv.Itoa(ss.raftPort)),
		"CLUSTER_DATA_DIR":                   p.dir,
		"COORDINATOR_PROMETHEUS_LISTEN_ADDR": net.JoinHostPort(p.ip, "0"),
		"CLUSTER_DEAD_SERVER_GRACE":          ss.deadServerGrace,
		"CLUSTER_TLS_CERT_FILE":              ss.member.CertFile,
		"CLUSTER_TLS_KEY_FILE":               ss.member.KeyFile,
		"CLUSTER_TLS_CA_FILE":                ss.member.CAFile,
		"AUTH_PUBLIC_KEYS_FILE":              ss.keys.PublicKeysFile,
		"AUTH_SIGNING_KEY_FILE":              ss.keys.SigningKeyFile,
		"AUTH_TOKEN_FILE":                    ss.adminFile,
		"SESSION_LEASE_TIMEOUT":              "1m", // sessions registered here never beat
		"SESSION_HEARTBEAT_INTERVAL":         "10s",
		"RAFT_SNAPSHOT_INTERVAL":             "1s",
		"RAFT_SNAPSHOT_THRESHOLD":            "64",
		"SHUTDOWN_TIMEOUT":                   "2s",
	}
}

// start schedules the pod: a new IP, its name pointing there, the process
// started from the StatefulSet's environment.
func (ss *statefulSet) start(p *pod) {
	ss.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.ip = fmt.Sprintf("127.0.%d.%d", p.ordinal+1, p.gen)
	ss.dns.set(p.name, p.ip)
	env := ss.env(p)
	l := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cfg := service.LoadConfig(l)
	if err := l.Err(); err != nil {
		ss.t.Fatalf("%s: %v", p.name, err)
	}
	log := zaptest.NewLogger(ss.t, zaptest.Level(zap.WarnLevel)).Named(fmt.Sprintf("coordinator-%d", p.ordinal))
	svc, err := service.New(context.Background(), cfg, log, service.Options{Resolver: ss.dns})
	if err != nil {
		ss.t.Fatalf("start %s: %v", p.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.svc, p.cancel, p.done, p.running = svc, cancel, make(chan error, 1), true
	go func() { p.done <- svc.Run(ctx) }()
}

// stop is SIGTERM: the process drains (a leader hands over) and exits.
func (ss *statefulSet) stop(p *pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	p.cancel()
	if err := <-p.done; err != nil {
		ss.t.Errorf("stop %s: %v", p.name, err)
	}
	p.running = false
}

// kill is a crash: the pod object (and so its name) stays.
func (ss *statefulSet) kill(p *pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		p.svc.Kill()
		p.cancel()
		<-p.done
		p.running = false
	}
}

func (ss *statefulSet) raftOf(p *pod) *raft.Raft {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return nil
	}
	return p.svc.Raft()
}

func (ss *statefulSet) leader() *pod {
	for _, p := range ss.pods {
		if r := ss.raftOf(p); r != nil && r.State() == raft.Leader {
			return p
		}
	}
	return nil
}

// voters is the leader's configuration: node id → Raft address.
func (ss *statefulSet) voters() map[string]string {
	l := ss.leader()
	if l == nil {
		return nil
	}
	f := ss.raftOf(l).GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	out := map[string]string{}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out[string(s.ID)] = string(s.Address)
		}
	}
	return out
}

// ready asks the pod what the kubelet's readiness probe asks: gRPC health of
// the "readiness" service.
func (ss *statefulSet) ready(p *pod) bool {
	conn, err := grpcclient.Dial("passthrough:///"+net.JoinHostPort(p.name, strconv.Itoa(ss.grpcPort)),
		grpc.WithContextDialer(ss.dns.dial), grpc.WithDisableRetry())
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service.ReadinessService})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// client dials the given pods, or all of them.
func (ss *statefulSet) client(pods ...*pod) *client.Client {
	if len(pods) == 0 {
		pods = ss.pods
	}
	var addrs []string
	for _, p := range pods {
		addrs = append(addrs, net.JoinHostPort(p.name, strconv.Itoa(ss.grpcPort)))
	}
	cl, err := client.New(client.Options{Addrs: addrs, Token: ss.admin, DialOptions: []grpc.DialOption{grpc.WithContextDialer(ss.dns.dial)}})
	if err != nil {
		ss.t.Fatal(err)
	}
	ss.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFormed waits for every running pod to be a voter under its DNS name,
// and ready.
func (ss *statefulSet) waitFormed(n int) {
	ss.t.Helper()
	eventually(ss.t, 30*time.Second, fmt.Sprintf("%d voters under their DNS names", n), func() bool {
		v := ss.voters()
		if len(v) != n {
			return false
		}
		for _, p := range ss.pods {
			if addr, ok := v[p.name]; ok && addr != net.JoinHostPort(p.name, strconv.Itoa(ss.raftPort)) {
				ss.t.Fatalf("%s is in the configuration at %s, not its DNS name", p.name, addr)
			}
		}
		return true
	})
	for _, p := range ss.pods {
		if ss.raftOf(p) == nil {
			continue
		}
		eventually(ss.t, 30*time.Second, p.name+" ready", func() bool { return ss.ready(p) })
	}
}

// scrape reads a pod's /metrics into name{labels} → value.
func (ss *statefulSet) scrape(p *pod) map[string]float64 {
	ss.t.Helper()
	p.mu.Lock()
	addr := p.svc.MetricsAddr().String()
	p.mu.Unlock()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		ss.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ss.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "gaia_coordinator_") {
			name, val, _ := strings.Cut(line, " ")
			out[name], _ = strconv.ParseFloat(val, 64)
		}
	}
	return out
}

// TestReadinessNeedsALeader: a pod that loses its quorum stops being ready
// (the Service stops sending it traffic) but keeps answering liveness. On
// the way, each pod's /metrics tells the same story.
func TestReadinessNeedsALeader(t *testing.T) {
	ss := newStatefulSet(t, 3, "0s")
	for _, p := range ss.pods {
		ss.start(p)
	}
	ss.waitFormed(3)

	// Through a follower only, so that its calls are forwarded.
	var follower *pod
	for _, p := range ss.pods {
		if p != ss.leader() {
			follower = p
		}
	}
	cl := ss.client(follower)
	s, tok := register(t, cl, "metered")
	h := cl.StartHeartbeat(context.Background(), s.GetSessionId(), tok, 20*time.Millisecond, nil)
	var leaders, beats, forwarded float64
	eventually(t, 10*time.Second, "heartbeats and forwarded calls counted", func() bool {
		leaders, beats, forwarded = 0, 0, 0
		for _, p := range ss.pods {
			m := ss.scrape(p)
			leaders += m["gaia_coordinator_leader"]
			beats += m["gaia_coordinator_heartbeats_total"]
			forwarded += m["gaia_coordinator_forwarded_calls_total"]
		}
		return beats >= 5 && forwarded >= 1
	})
	h.Stop()
	if leaders != 1 {
		t.Fatalf("%v pods report leading", leaders)
	}
	for _, p := range ss.pods {
		m := ss.scrape(p)
		for name, want := range map[string]float64{
			"gaia_coordinator_ready":                        1,
			"gaia_coordinator_storage_writable":             1,
			"gaia_coordinator_has_leader":                   1,
			"gaia_coordinator_raft_voters":                  3,
			`gaia_coordinator_sessions{state="registered"}`: 0,
			"gaia_coordinator_locks":                        0,
		} {
			got, ok := m[name]
			if name == `gaia_coordinator_sessions{state="registered"}` {
				got, ok = m[`gaia_coordinator_sessions{state="registered"}`]+m[`gaia_coordinator_sessions{state="active"}`], true
				want = 1
			}
			if !ok || got != want {
				t.Errorf("%s: %s = %v, want %v", p.name, name, got, want)
			}
		}
		if m["gaia_coordinator_raft_applied_index"] == 0 || m["gaia_coordinator_raft_term"] == 0 {
			t.Errorf("%s: raft indexes missing: %v", p.name, m)
		}
	}

	ss.kill(ss.pods[1])
	ss.kill(ss.pods[2])
	alone := ss.pods[0]
	eventually(t, 10*time.Second, "a pod without quorum not ready", func() bool { return !ss.ready(alone) })
	conn, err := grpcclient.Dial("passthrough:///"+net.JoinHostPort(alone.name, strconv.Itoa(ss.grpcPort)), grpc.WithContextDialer(ss.dns.dial), grpcclient.WithBearer(ss.admin))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctxT(t, 5*time.Second), &healthpb.HealthCheckRequest{Service: service.LivenessService})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("liveness of a pod without quorum: %v, %v", resp.GetStatus(), err)
	}
	if ok, why := func() (bool, string) { alone.mu.Lock(); defer alone.mu.Unlock(); return alone.svc.Ready() }(); ok || why == "" {
		t.Fatalf("Ready() = %v, %q", ok, why)
	}
	if m := ss.scrape(alone); m["gaia_coordinator_ready"] != 0 {
		t.Errorf("metrics say ready without a quorum")
	}
	ss.start(ss.pods[1])
	eventually(t, 30*time.Second, "ready again once a quorum is back", func() bool { return ss.ready(alone) && ss.ready(ss.pods[1]) })
}

// TestRestoreFromOneSnapshot follows docs/DEPLOY.md's restore: every pod
// stopped and every volume wiped, then pod 0's volume given only the Raft
// snapshot folder copied from a follower; all three started. Pod 0 starts
// from the snapshot (its state and its configuration of the same three
// names) instead of bootstrapping, the empty pods are brought up to date,
// and the sessions are back.
func TestRestoreFromOneSnapshot(t *testing.T) {
	ss := newStatefulSet(t, 3, "0s")
	for _, p := range ss.pods {
		ss.start(p)
	}
	ss.waitFormed(3)
	cl := ss.client()
	for i := range 80 {
		register(t, cl, fmt.Sprintf("kept-%d", i))
	}
	follower := ss.pods[1]
	if ss.leader() == follower {
		follower = ss.pods[2]
	}
	// A snapshot on the follower that holds every registration.
	want := ss.raftOf(ss.leader()).LastIndex()
	eventually(t, 10*time.Second, "the follower applies everything", func() bool {
		return ss.raftOf(follower).AppliedIndex() >= want
	})
	if err := ss.raftOf(follower).Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(follower.dir, "snapshots")
	for _, p := range ss.pods {
		ss.stop(p)
	}
	backup := filepath.Join(t.TempDir(), "snapshots")
	if err := os.CopyFS(backup, os.DirFS(snapDir)); err != nil {
		t.Fatal(err)
	}
	for _, p := range ss.pods {
		if err := os.RemoveAll(p.dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(ss.pods[0].dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(ss.pods[0].dir, "snapshots"), os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	// The snapshot's configuration names all three, but pods 1 and 2 start
	// with no Raft state and so vote for no one as the voters they were: the
	// peers file makes pod 0 the only voter, and the others join it.
	peers := fmt.Sprintf(`[{"id": %q, "address": %q}]`, ss.pods[0].name, net.JoinHostPort(ss.pods[0].name, strconv.Itoa(ss.raftPort)))
	if err := os.WriteFile(filepath.Join(ss.pods[0].dir, "peers.json"), []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range ss.pods {
		ss.start(p)
	}
	ss.waitFormed(3)
	cl = ss.client()
	ctx := ctxT(t, 10*time.Second)
	found := 0
	resp, err := cl.Sessions().ListSessions(ctx, &coordinatorv1.ListSessionsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range resp.GetSessions() {
		if strings.HasPrefix(s.GetName(), "kept-") {
			found++
		}
	}
	if found != 80 {
		t.Fatalf("%d sessions after the restore, want the 80 in the snapshot", found)
	}
}
