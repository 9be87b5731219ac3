package k8s_test

// The coordinator StatefulSet with real processes on loopback. Each pod is a
// coordinator process built from the repository, started with the
// environment the kubelet would give the rendered StatefulSet's container
// (ConfigMap, Secrets, $(VAR) references: podEnv, as TestManifests checks
// it) with only what a single machine forces changed:
//
//   - the container ports (7001, 8300, 9101) become ports free here, and a
//     wildcard bind address (":7001", "0.0.0.0:8300") the pod's own loopback
//     address: pods share one network namespace here, not one each;
//   - paths under the data volume become a folder per pod, the mounted
//     Secrets real files (materialize);
//   - GAIA_TEST_HOSTS names a hosts file the test rewrites, standing in for
//     the cluster DNS: a pod's name points at a loopback address of its own,
//     127.0.<ordinal+1>.<incarnation>, a new one each time the pod is
//     recreated (pod IPs change), and disappears when the pod is deleted;
//   - CLUSTER_DEAD_SERVER_GRACE, in the deletion scenario only, is seconds
//     rather than the ConfigMap's five minutes.
//
// Everything else, Raft timings included (RAFT_HEARTBEAT_TIMEOUT=500ms,
// RAFT_ELECTION_TIMEOUT=1s), is the manifests'. A pod stops by SIGTERM, as
// the kubelet stops it, or by SIGKILL for a crash.
//
// It is one file of more than 500 lines on purpose: the two scenarios drive
// the same StatefulSet controller, kubelet and DNS played here, and read best
// beside them. It sits beside manifests_test.go to load the pods' environment
// exactly as TestManifests does.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/client"
	coordinator "github.com/gaia-platform/gaia/services/coordinator/service"
)

const podNamespace = "gaia"

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// coordinatorPod is one pod of the StatefulSet, across its incarnations.
type coordinatorPod struct {
	ordinal int
	podName string // coordinator-N
	name    string // coordinator-N.coordinator-raft.gaia.svc: node id and address
	volume  string // its persistent volume (mounted at /var/lib/gaia)

	gen    int
	ip     string
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed when the process has been waited for
}

func (p *coordinatorPod) running() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// podCluster plays the StatefulSet controller, the kubelet and the cluster
// DNS for coordinator processes.
type podCluster struct {
	t         *testing.T
	bin       string
	o         objects
	spec      corev1.PodSpec
	container corev1.Container
	ports     map[string]string // container port → the port used here
	grpcPort  string
	overrides map[string]string // variables set here, not from the manifests

	hostsFile string
	hostsMu   sync.Mutex
	hosts     map[string]string // pod name → address

	pods  []*coordinatorPod
	admin string // the coordinators' own admin credential (gaia-coordinator-token)

	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn
}

// buildCoordinator builds the coordinator binary once for every scenario.
func buildCoordinator(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "coordinator")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/gaia-platform/gaia/services/coordinator")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build services/coordinator: %v\n%s", err, out)
	}
	return bin
}

// newPodCluster renders deploy/k8s/services/coordinator and prepares its
// pods; none runs yet.
func newPodCluster(t *testing.T, bin string, overrides map[string]string) *podCluster {
	t.Helper()
	o := decode(t, render(t, "services/coordinator"))
	if len(o.statefulSets) != 1 || o.statefulSets[0].Name != "coordinator" {
		t.Fatalf("want the coordinator StatefulSet alone, got %d StatefulSets", len(o.statefulSets))
	}
	sts := o.statefulSets[0]
	i := slices.IndexFunc(sts.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "coordinator" })
	if i < 0 {
		t.Fatal("no coordinator container")
	}
	pc := &podCluster{
		t: t, bin: bin, o: o, spec: sts.Spec.Template.Spec, container: sts.Spec.Template.Spec.Containers[i],
		ports: map[string]string{}, overrides: overrides,
		hostsFile: filepath.Join(t.TempDir(), "hosts"), hosts: map[string]string{},
		conns: map[string]*grpc.ClientConn{},
	}
	// One port per container port, free on every address, shared by all
	// pods as in Kubernetes (each pod listens on its own address).
	for _, cp := range pc.container.Ports {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		pc.ports[strconv.Itoa(int(cp.ContainerPort))] = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		_ = l.Close()
		if cp.Name == "grpc" {
			pc.grpcPort = pc.ports[strconv.Itoa(int(cp.ContainerPort))]
		}
	}
	pc.writeHosts()
	volumes := t.TempDir()
	for n := range int(replicas(sts.Spec.Replicas)) {
		podName := fmt.Sprintf("%s-%d", sts.Name, n)
		pc.pods = append(pc.pods, &coordinatorPod{
			ordinal: n, podName: podName,
			name:   fmt.Sprintf("%s.%s.%s.svc", podName, sts.Spec.ServiceName, podNamespace),
			volume: filepath.Join(volumes, podName),
		})
	}
	tok, err := os.ReadFile(authFiles.adminToken)
	if err != nil {
		t.Fatal(err)
	}
	pc.admin = strings.TrimSpace(string(tok))
	t.Cleanup(func() {
		pc.connMu.Lock()
		for _, c := range pc.conns {
			_ = c.Close()
		}
		pc.connMu.Unlock()
		for _, p := range pc.pods {
			if p.running() {
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
			if t.Failed() && p.out != nil {
				t.Logf("%s (last incarnation) output:\n%s", p.podName, tail(p.out.String(), 40))
			}
		}
	})
	return pc
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// writeHosts publishes the DNS: a new file renamed over the old one.
func (pc *podCluster) writeHosts() {
	pc.hostsMu.Lock()
	defer pc.hostsMu.Unlock()
	var b strings.Builder
	for name, ip := range pc.hosts {
		fmt.Fprintf(&b, "%s %s\n", ip, name)
	}
	tmp := pc.hostsFile + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		pc.t.Fatal(err)
	}
	if err := os.Rename(tmp, pc.hostsFile); err != nil {
		pc.t.Fatal(err)
	}
}

func (pc *podCluster) setHost(name, ip string) {
	pc.hostsMu.Lock()
	if ip == "" {
		delete(pc.hosts, name)
	} else {
		pc.hosts[name] = ip
	}
	pc.hostsMu.Unlock()
	pc.writeHosts()
}

// dial is the test's own view of the same DNS.
func (pc *podCluster) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	pc.hostsMu.Lock()
	ip, ok := pc.hosts[host]
	pc.hostsMu.Unlock()
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort(ip, port))
}

// env is what the kubelet gives the pod's container, changed only as the
// file comment says.
func (pc *podCluster) env(p *coordinatorPod) map[string]string {
	t := pc.t
	t.Helper()
	env, _ := podEnv(t, pc.o, pc.container, p.podName, podNamespace)
	materialize(t, pc.o, pc.spec, pc.container, env)
	var dataMount string
	for _, m := range pc.container.VolumeMounts {
		if m.Name == "data" {
			dataMount = strings.TrimSuffix(m.MountPath, "/")
		}
	}
	if dataMount == "" {
		t.Fatal("no data volume mounted")
	}
	for k, v := range env {
		if v == dataMount || strings.HasPrefix(v, dataMount+"/") {
			env[k] = p.volume + strings.TrimPrefix(v, dataMount)
			continue
		}
		parts := strings.Split(v, ",")
		for i, part := range parts {
			host, port, err := net.SplitHostPort(part)
			if err != nil {
				continue
			}
			here, ok := pc.ports[port]
			if !ok {
				continue
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = p.ip
			}
			parts[i] = net.JoinHostPort(host, here)
		}
		env[k] = strings.Join(parts, ",")
	}
	for k, v := range pc.overrides {
		env[k] = v
	}
	env[coordinator.TestHostsEnv] = pc.hostsFile
	return env
}

// start schedules the pod: a new address, its name pointing there, the
// process started from the StatefulSet's environment on its volume.
func (pc *podCluster) start(p *coordinatorPod) {
	pc.t.Helper()
	if p.running() {
		pc.t.Fatalf("%s is already running", p.podName)
	}
	p.gen++
	p.ip = fmt.Sprintf("127.0.%d.%d", p.ordinal+1, p.gen)
	pc.setHost(p.name, p.ip)
	env := pc.env(p)
	p.cmd = exec.Command(pc.bin)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.out = &lockedBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		pc.t.Fatalf("start %s: %v", p.podName, err)
	}
	exited := make(chan struct{})
	p.exited = exited
	cmd := p.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
}

// sigterm is the kubelet stopping the pod; waitStopped waits for the end.
func (pc *podCluster) sigterm(p *coordinatorPod) {
	pc.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		pc.t.Fatalf("SIGTERM %s: %v", p.podName, err)
	}
}

// waitStopped returns when the process has exited after its SIGTERM, and
// fails the test unless it exited cleanly within
// terminationGracePeriodSeconds (the kubelet's SIGKILL comes then).
func (pc *podCluster) waitStopped(p *coordinatorPod) {
	pc.t.Helper()
	grace := 30 * time.Second
	if g := pc.spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		pc.t.Fatalf("%s did not stop within terminationGracePeriodSeconds (%v) of SIGTERM", p.podName, grace)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		pc.t.Fatalf("%s exited %d after SIGTERM:\n%s", p.podName, code, tail(p.out.String(), 20))
	}
}

// crash is kill -9 (a node lost, an OOM kill); the pod object, and so its
// name, stays.
func (pc *podCluster) crash(p *coordinatorPod) {
	pc.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		pc.t.Fatalf("SIGKILL %s: %v", p.podName, err)
	}
	<-p.exited
}

// deleteForGood is a pod and its claim deleted, no replacement yet: the
// process killed, its name gone from the DNS, its volume removed.
func (pc *podCluster) deleteForGood(p *coordinatorPod) {
	pc.t.Helper()
	pc.crash(p)
	pc.setHost(p.name, "")
	if err := os.RemoveAll(p.volume); err != nil {
		pc.t.Fatal(err)
	}
}

func (pc *podCluster) addr(p *coordinatorPod) string { return net.JoinHostPort(p.name, pc.grpcPort) }

// conn is a connection to one pod by its name, kept across calls (it
// redials, resolving the name again, when the pod moves).
func (pc *podCluster) conn(p *coordinatorPod) *grpc.ClientConn {
	pc.connMu.Lock()
	defer pc.connMu.Unlock()
	if c, ok := pc.conns[p.name]; ok {
		return c
	}
	c, err := grpcclient.Dial("passthrough:///"+pc.addr(p), grpc.WithContextDialer(pc.dial), grpc.WithDisableRetry(), grpcclient.WithBearer(pc.admin))
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.conns[p.name] = c
	return c
}

// status is the pod's own GetClusterStatus (answered locally), nil if it
// does not answer.
func (pc *podCluster) status(p *coordinatorPod) *coordinatorv1.GetClusterStatusResponse {
	if !p.running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	st, err := coordinatorv1.NewClusterServiceClient(pc.conn(p)).GetClusterStatus(ctx, &coordinatorv1.GetClusterStatusRequest{})
	if err != nil {
		return nil
	}
	return st
}

// ready is the kubelet's readiness probe: gRPC health of "readiness".
func (pc *podCluster) ready(p *coordinatorPod) bool {
	if !p.running() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	resp, err := healthpb.NewHealthClient(pc.conn(p)).Check(ctx, &healthpb.HealthCheckRequest{Service: coordinator.ReadinessService})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// leader is the pod that says it leads, with its status.
func (pc *podCluster) leader(among ...*coordinatorPod) (*coordinatorPod, *coordinatorv1.GetClusterStatusResponse) {
	if len(among) == 0 {
		among = pc.pods
	}
	for _, p := range among {
		if st := pc.status(p); st != nil && st.GetLeader().GetNodeId() == p.name && st.GetAnsweredBy() == p.name {
			return p, st
		}
	}
	return nil, nil
}

// voters is the leader's configuration: node id → Raft address; nil
// without a leader.
func (pc *podCluster) voters() map[string]string {
	_, st := pc.leader()
	if st == nil {
		return nil
	}
	out := map[string]string{}
	for _, n := range st.GetNodes() {
		if n.GetSuffrage() == coordinatorv1.NodeSuffrage_NODE_SUFFRAGE_VOTER {
			out[n.GetNodeId()] = n.GetRaftAddress()
		}
	}
	return out
}

// waitFormed waits for the running pods to be the voters, each under its
// DNS name, and ready.
func (pc *podCluster) waitFormed(timeout time.Duration) {
	pc.t.Helper()
	var want []string
	for _, p := range pc.pods {
		if p.running() {
			want = append(want, p.name)
		}
	}
	deadline := time.Now().Add(timeout)
	waitUntil(pc.t, deadline, fmt.Sprintf("voters %v under their DNS names", want), func() bool {
		v := pc.voters()
		if len(v) != len(want) {
			return false
		}
		for _, name := range want {
			if v[name] != net.JoinHostPort(name, pc.ports["8300"]) {
				return false
			}
		}
		return true
	})
	for _, p := range pc.pods {
		if p.running() {
			waitUntil(pc.t, deadline, p.podName+" ready", func() bool { return pc.ready(p) })
		}
	}
}

func (pc *podCluster) client() *client.Client {
	var addrs []string
	for _, p := range pc.pods {
		addrs = append(addrs, pc.addr(p))
	}
	cl, err := client.New(client.Options{Addrs: addrs, Token: pc.admin, DialOptions: []grpc.DialOption{grpc.WithContextDialer(pc.dial)}})
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func (pc *podCluster) envDuration(name string) time.Duration {
	pc.t.Helper()
	env, _ := podEnv(pc.t, pc.o, pc.container, pc.pods[0].podName, podNamespace)
	d, err := time.ParseDuration(env[name])
	if err != nil {
		pc.t.Fatalf("%s=%q in the manifests: %v", name, env[name], err)
	}
	return d
}

// waitUntil polls ok until it holds, failing the test at the deadline.
func waitUntil(t *testing.T, deadline time.Time, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within the deadline", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sessionWriter registers sessions one after another, as fast as the
// cluster acknowledges them, and records when each was acknowledged.
type sessionWriter struct {
	mu       sync.Mutex
	acked    []string
	at       []time.Time
	failures []error
	stop     chan struct{}
	done     chan struct{}
}

func startWriting(cl *client.Client, joinSecret string) *sessionWriter {
	w := &sessionWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			name := fmt.Sprintf("rolling-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := cl.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
				Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
				MaxConcurrentTasks: 1, JoinSecret: joinSecret,
			})
			cancel()
			now := time.Now()
			w.mu.Lock()
			if err != nil {
				w.failures = append(w.failures, fmt.Errorf("%s: %w", name, err))
			} else {
				w.acked = append(w.acked, name)
				w.at = append(w.at, now)
			}
			w.mu.Unlock()
			time.Sleep(5 * time.Millisecond) // a steady stream, not a flood
		}
	}()
	return w
}

func (w *sessionWriter) count() (acked, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked), len(w.failures)
}

// longestGap is the longest time between two acknowledgements that falls
// at least partly within [from, to].
func (w *sessionWriter) longestGap(from, to time.Time) (gap time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.at); i++ {
		if w.at[i].Before(from) || w.at[i-1].After(to) {
			continue
		}
		gap = max(gap, w.at[i].Sub(w.at[i-1]))
	}
	return gap
}

// TestCoordinatorProcesses runs the coordinator StatefulSet as processes:
// a rolling restart, and a pod deleted for good and replaced.
func TestCoordinatorProcesses(t *testing.T) {
	bin := buildCoordinator(t)
	t.Run("RollingRestartLeaderLast", func(t *testing.T) { rollingRestartLeaderLast(t, bin) })
	t.Run("DeletedPodRemovedAndReplaced", func(t *testing.T) { deletedPodRemovedAndReplaced(t, bin) })
}

// rollingRestartLeaderLast starts the three pods together
// (podManagementPolicy: Parallel: pod 0 forms the cluster once the others
// answer, they join through the DNS names), then restarts them one at a
// time as a rolling update does: SIGTERM, a new pod (new address) on the
// same volume, readiness before the next; followers first, the leader last.
// A client registers sessions throughout. Every write succeeds and none is
// lost; the leader's SIGTERM hands leadership over (it says so, and a new
// leader follows within one election timeout); the longest pause in the
// writes is reported and bounded. The next pod goes as soon as the
// last is ready, without the StatefulSet's minReadySeconds (10 s): a
// tighter schedule than the controller's.
func rollingRestartLeaderLast(t *testing.T, bin string) {
	pc := newPodCluster(t, bin, nil)
	electionTimeout := pc.envDuration("RAFT_ELECTION_TIMEOUT")
	heartbeatTimeout := pc.envDuration("RAFT_HEARTBEAT_TIMEOUT")
	began := time.Now()
	for _, p := range pc.pods {
		pc.start(p)
	}
	pc.waitFormed(30 * time.Second)
	t.Logf("3 pods formed one cluster and were ready in %v (RAFT_HEARTBEAT_TIMEOUT=%v, RAFT_ELECTION_TIMEOUT=%v)",
		time.Since(began).Round(time.Millisecond), heartbeatTimeout, electionTimeout)

	env := pc.env(pc.pods[0])
	w := startWriting(pc.client(), env["CLUSTER_JOIN_SECRET"])
	stopWriting := sync.OnceFunc(func() { close(w.stop); <-w.done })
	t.Cleanup(stopWriting)
	flowing := func(n int) func() bool {
		return func() bool { acked, failed := w.count(); return acked >= n || failed > 0 }
	}
	waitUntil(t, time.Now().Add(20*time.Second), "writes flowing", flowing(20))

	lead, _ := pc.leader()
	if lead == nil {
		t.Fatal("no leader")
	}
	var order []*coordinatorPod
	for i := len(pc.pods) - 1; i >= 0; i-- { // highest ordinal first, as the controller rolls
		if pc.pods[i] != lead {
			order = append(order, pc.pods[i])
		}
	}
	order = append(order, lead)

	type restart struct {
		pod          *coordinatorPod
		wasLeader    bool
		from, to     time.Time
		newLeader    string
		handOverTook time.Duration
	}
	var restarts []restart
	for _, p := range order {
		r := restart{pod: p, wasLeader: p == lead, from: time.Now()}
		pc.sigterm(p)
		if r.wasLeader {
			// Who leads now, asked of the other two until one says it does.
			var others []*coordinatorPod
			for _, q := range pc.pods {
				if q != p {
					others = append(others, q)
				}
			}
			waitUntil(t, time.Now().Add(10*time.Second), "a new leader after the leader's SIGTERM", func() bool {
				if np, _ := pc.leader(others...); np != nil {
					r.newLeader, r.handOverTook = np.podName, time.Since(r.from)
					return true
				}
				return false
			})
		}
		pc.waitStopped(p)
		if r.wasLeader && !strings.Contains(p.out.String(), "leadership handed over before stopping") {
			t.Errorf("the leader's SIGTERM did not hand leadership over; its output:\n%s", tail(p.out.String(), 20))
		}
		pc.start(p)
		waitUntil(t, time.Now().Add(30*time.Second), p.podName+" ready after its restart", func() bool { return pc.ready(p) })
		r.to = time.Now()
		restarts = append(restarts, r)
	}
	pc.waitFormed(30 * time.Second)
	acked, _ := w.count()
	waitUntil(t, time.Now().Add(20*time.Second), "writes flowing after the rolling restart", flowing(acked+20))
	stopWriting()

	w.mu.Lock()
	failures, names := w.failures, w.acked
	w.mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d of %d writes failed during the rolling restart, first: %v", len(failures), len(failures)+len(names), failures[0])
	}
	overall := w.longestGap(time.Time{}, time.Now())
	for _, r := range restarts {
		gap := w.longestGap(r.from, r.to)
		role := "follower"
		if r.wasLeader {
			role = fmt.Sprintf("leader; %s led %v after the SIGTERM", r.newLeader, r.handOverTook.Round(time.Millisecond))
		}
		t.Logf("restart of %s (%s): SIGTERM to ready %v, longest write gap %v",
			r.pod.podName, role, r.to.Sub(r.from).Round(time.Millisecond), gap.Round(time.Millisecond))
		// The proof of the hand-over is the stopped leader's own word that
		// raft's LeadershipTransfer succeeded (checked above): timing alone
		// is not, since an election after a silent leader also ended within
		// one election timeout (876 ms) when the hand-over was switched off.
		if r.wasLeader && r.handOverTook > electionTimeout {
			t.Errorf("a new leader %v after the leader's SIGTERM, more than one RAFT_ELECTION_TIMEOUT (%v)", r.handOverTook, electionTimeout)
		}
	}
	t.Logf("rolling restart of 3 pods, leader last: %d writes, all acknowledged; longest gap between two writes %v",
		len(names), overall.Round(time.Millisecond))
	// The bound is one RAFT_ELECTION_TIMEOUT. A hand-over pauses writes for
	// a vote round plus the client's retry backoff: 52-497 ms measured, the
	// high end with a load average of 16 on 2 cores. A leader lost without
	// one pauses them for a heartbeat timeout (no follower campaigns
	// sooner), a vote and the retry: 1.04 s with the hand-over switched off.
	// A follower's restart should cost less than either.
	if overall > electionTimeout {
		t.Errorf("writes paused for %v during the rolling restart, more than RAFT_ELECTION_TIMEOUT (%v)", overall, electionTimeout)
	}

	// Every acknowledged registration is still there.
	cl := pc.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for token := ""; ; {
		resp, err := cl.Sessions().ListSessions(ctx, &coordinatorv1.ListSessionsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.GetSessions() {
			seen[s.GetName()] = true
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	for _, name := range names {
		if !seen[name] {
			t.Fatalf("acknowledged session %s lost in the rolling restart", name)
		}
	}
}

// deletedPodRemovedAndReplaced: a crashed pod, whose name still resolves,
// is never removed; pod 0 (the one that may bootstrap) deleted for good,
// its name and volume gone, is removed from the Raft configuration once
// CLUSTER_DEAD_SERVER_GRACE has passed, not before; its replacement, same
// name and an empty volume, joins the existing cluster rather than
// founding its own, and catches up.
func deletedPodRemovedAndReplaced(t *testing.T, bin string) {
	const grace = 2 * time.Second
	pc := newPodCluster(t, bin, map[string]string{"CLUSTER_DEAD_SERVER_GRACE": grace.String()})
	for _, p := range pc.pods {
		pc.start(p)
	}
	pc.waitFormed(30 * time.Second)
	cl := pc.client()
	joinSecret := pc.env(pc.pods[0])["CLUSTER_JOIN_SECRET"]
	register := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cl.Sessions().RegisterSession(ctx, &coordinatorv1.RegisterSessionRequest{
			Name: name, Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
			MaxConcurrentTasks: 1, JoinSecret: joinSecret,
		}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	for i := range 10 {
		register(fmt.Sprintf("before-%d", i))
	}

	// A crash: the pod object stays, and so does its name. Never removed.
	crashed := pc.pods[1]
	pc.crash(crashed)
	crashedAt := time.Now()
	for time.Since(crashedAt) < 2*grace+time.Second {
		if v := pc.voters(); v != nil && len(v) != 3 {
			t.Fatalf("a crashed pod whose name resolves was removed: voters %v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pc.start(crashed)
	pc.waitFormed(30 * time.Second)

	// Deleted for good: removed after the grace period.
	gone := pc.pods[0]
	pc.deleteForGood(gone)
	deletedAt := time.Now()
	waitUntil(t, deletedAt.Add(grace+20*time.Second), "the deleted pod removed from the configuration", func() bool {
		v := pc.voters()
		_, still := v[gone.name]
		return v != nil && !still
	})
	removedAfter := time.Since(deletedAt)
	if removedAfter < grace {
		t.Fatalf("removed %v after deletion, before the %v grace period", removedAfter, grace)
	}
	t.Logf("deleted pod removed from the configuration %v after deletion (CLUSTER_DEAD_SERVER_GRACE=%v)", removedAfter.Round(time.Millisecond), grace)
	if v := pc.voters(); len(v) != 2 {
		t.Fatalf("voters after the removal: %v", v)
	}
	register("while-two")

	// The replacement: same name, empty volume, new address. One cluster:
	// every pod follows the same leader with three voters.
	pc.start(gone)
	pc.waitFormed(30 * time.Second)
	var leader *coordinatorPod
	waitUntil(t, time.Now().Add(15*time.Second), "every pod in one cluster of three", func() bool {
		var leaders []string
		for _, p := range pc.pods {
			st := pc.status(p)
			if st == nil || len(st.GetNodes()) != 3 || st.GetLeader().GetNodeId() == "" {
				return false
			}
			leaders = append(leaders, st.GetLeader().GetNodeId())
		}
		leader, _ = pc.leader()
		return leader != nil && leaders[0] == leader.name && leaders[1] == leader.name && leaders[2] == leader.name
	})
	// Caught up: its own state (answered locally) is the leader's. The
	// sessions never beat, so with the ConfigMap's 30 s lease they may turn
	// suspect meanwhile: compare with the leader, not with a constant.
	var mine, theirs *coordinatorv1.GetClusterStatusResponse
	waitUntil(t, time.Now().Add(15*time.Second), "the replacement caught up", func() bool {
		theirs = pc.status(leader)
		mine = pc.status(gone)
		return mine != nil && theirs != nil && mine.GetAppliedIndex() >= theirs.GetCommitIndex() && mine.GetSessions() == theirs.GetSessions()
	})
	if mine.GetAnsweredBy() != gone.name || mine.GetSessions() == 0 {
		t.Fatalf("the replacement's state: answered by %s with %d live sessions", mine.GetAnsweredBy(), mine.GetSessions())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Sessions().ListSessions(ctx, &coordinatorv1.ListSessionsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetSessions()); n != 11 {
		t.Fatalf("%d sessions after the replacement, want the 11 registered", n)
	}
	if strings.Contains(gone.out.String(), "forming one") {
		t.Fatalf("the replacement formed a cluster of its own:\n%s", tail(gone.out.String(), 20))
	}
}
