package service_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/proctest"
)

// The chaos suite's workload and nemesis.
const (
	chaosDefaultDuration = time.Minute
	chaosLockWorkers     = 6
	chaosBeatOnly        = 3 // sessions that only beat, one through each node
	chaosOpPause         = 10 * time.Millisecond
	chaosDownTime        = time.Second // between a kill -9 and the restart
	chaosQuiet           = 500 * time.Millisecond
	chaosConverge        = 30 * time.Second
	chaosCheckTimeout    = 5 * time.Minute
)

// chaosKeys are the locks the workers take; linWaitKey is the one acquired
// with a wait_timeout (the model allows a queued answer only there).
var chaosKeys = []string{"chaos/0", "chaos/1", "chaos/2", "chaos/3", linWaitKey}

// chaosFaults are the nemesis's faults, taken in turn, each against the
// leader and then against a follower; crash-all kills every node at once
// (kill -9 of all three, then all restarted).
var chaosFaults = []string{"kill", "freeze-short", "crash-all", "freeze-long", "partition"}

// chaosWindow is one fault, from its start to the next fault's start.
type chaosWindow struct {
	fault  string // "none" before the first fault
	target string // leader or follower
	node   string
	start  time.Time
	length time.Duration
}

func (w chaosWindow) kind() string {
	if w.fault == "none" {
		return "none"
	}
	return w.fault + " " + w.target
}

// TestChaos runs three coordinator processes, started as the README says,
// under a nemesis that kills (kill -9, then a restart), freezes briefly
// (SIGSTOP for 0.1-1.5 s), crashes every node at once (kill -9 of all three,
// restarted after a second; snapshots are taken every 256 entries, so some
// crashes land just after one), freezes past the lease (lease + 1 s) and
// partitions (lease + 1 s), the leader and a follower in turn, while sessions beat every interval through
// every node (a stream with no ack for 1.5 intervals moves to the next node,
// as the Go client does) and lock workers acquire, renew, release and read
// locks through single nodes and through all of them. It fails on a lock
// history porcupine cannot linearize, a session failed although its client
// never stopped beating, an ACTIVE ack received after the cluster committed
// that session's failure, or a cluster that does not converge after a fault.
// It reports each per fault type, with the time no node led.
//
// The partition cuts a node's Raft traffic both ways for lease + 1 s (a
// proxy on every path between two nodes, see proctest.Options.Partitions);
// its gRPC port stays reachable, so clients keep talking to it.
//
// GAIA_CHAOS_DURATION sets how long the nemesis runs (1m by default; `make
// chaos` runs 10m).
func TestChaos(t *testing.T) {
	duration := chaosDefaultDuration
	if v := os.Getenv("GAIA_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("GAIA_CHAOS_DURATION=%q: want a positive duration such as 10m", v)
		}
		duration = d
	}
	// Snapshots every few hundred entries, so that crashes land right after
	// one and restarts and lagging nodes restore from them.
	env := frozenEnv()
	env["RAFT_SNAPSHOT_THRESHOLD"] = "256"
	env["RAFT_SNAPSHOT_INTERVAL"] = "1s"
	c := proctest.Start(t, proctest.Options{Env: env, Partitions: true})
	hist := &linHistory{start: time.Now()}
	admin := c.Client()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, nemesis for %v, lease %v, beats every %v", seed, duration, frozenLease, frozenInterval)
	rnd := rand.New(rand.NewPCG(seed, 0))

	// Sessions, each beaten for the whole run.
	type chaosSession struct {
		id, name string
		beater   *procBeater
	}
	var sessions []*chaosSession
	owners := map[string]int{}
	addSession := func(name string, first int) *chaosSession {
		s, tok := register(t, admin, name)
		var order []*proctest.Node
		for i := range c.Nodes {
			order = append(order, c.Nodes[(first+i)%len(c.Nodes)])
		}
		cs := &chaosSession{id: s.GetSessionId(), name: name,
			beater: startProcBeater(c, s.GetSessionId(), tok, frozenInterval, frozenInterval*3/2, order...)}
		sessions = append(sessions, cs)
		return cs
	}
	defer func() {
		for _, s := range sessions {
			s.beater.stop()
		}
	}()
	var workers []*linWorker
	for i := range chaosLockWorkers {
		// One client through each node, the rest through all of them.
		node := -1
		addrs := []string{}
		for _, n := range c.Nodes {
			addrs = append(addrs, n.GRPCAddr)
		}
		if i < len(c.Nodes) {
			node = i % len(c.Nodes)
			addrs = []string{c.Nodes[node].GRPCAddr}
		}
		cs := addSession(fmt.Sprintf("chaos-locks-%d", i), max(node, 0))
		owners[cs.id] = i
		workers = append(workers, &linWorker{
			t: t, id: i, node: node, sessionID: cs.id, token: cs.beater.token,
			cl: linClientOf(t, addrs, c.AdminToken), hist: hist, sessions: owners,
			rnd: rand.New(rand.NewPCG(seed, uint64(i+1))), belief: map[string]*linBelief{},
			keys: chaosKeys, maxOps: 1 << 30, pause: chaosOpPause,
		})
	}
	for i := range chaosBeatOnly {
		addSession(fmt.Sprintf("chaos-beats-%d", i), i)
	}

	stopWork := make(chan struct{})
	var wg sync.WaitGroup
	stopWorkload := sync.OnceFunc(func() { close(stopWork); wg.Wait() })
	defer stopWorkload()
	for _, w := range workers {
		wg.Go(func() { w.run(stopWork) })
	}

	// Who leads, sampled all along.
	type sample struct {
		at     time.Time
		leader bool
	}
	var samplesMu sync.Mutex
	var samples []sample
	stopMonitor := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		for {
			select {
			case <-stopMonitor:
				return
			case <-time.After(50 * time.Millisecond):
			}
			lead := c.Leader() != nil
			samplesMu.Lock()
			samples = append(samples, sample{time.Now(), lead})
			samplesMu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-monitorDone:
		default:
			close(stopMonitor)
			<-monitorDone
		}
	}()

	// The nemesis.
	windows := []chaosWindow{{fault: "none", start: time.Now()}}
	time.Sleep(2 * time.Second) // the workload alone first, as a baseline
	end := time.Now().Add(duration)
	for i := 0; time.Now().Before(end); i++ {
		lead := c.WaitConverged(chaosConverge)
		time.Sleep(chaosQuiet)
		w := chaosWindow{fault: chaosFaults[i%len(chaosFaults)], target: "leader", node: lead.ID, start: time.Now()}
		victim := lead
		switch {
		case w.fault == "crash-all":
			w.target, w.node = "all", "every node"
		case (i/len(chaosFaults))%2 == 1:
			victim = c.Followers(lead)[rnd.IntN(2)]
			w.target, w.node = "follower", victim.ID
		}
		switch w.fault {
		case "crash-all":
			c.KillAll()
			w.length = chaosDownTime
			time.Sleep(w.length)
			for _, n := range c.Nodes {
				c.Restart(n)
			}
		case "kill":
			c.Kill(victim)
			w.length = chaosDownTime
			time.Sleep(w.length)
			c.Restart(victim)
		case "freeze-short":
			w.length = time.Duration(100+rnd.IntN(1400)) * time.Millisecond
			c.Freeze(victim)
			time.Sleep(w.length)
			c.Thaw(victim)
		case "freeze-long":
			w.length = frozenLease + time.Second
			c.Freeze(victim)
			time.Sleep(w.length)
			c.Thaw(victim)
		case "partition":
			w.length = frozenLease + time.Second
			c.Isolate(victim)
			time.Sleep(w.length)
			c.Heal(victim)
		}
		windows = append(windows, w)
		hist.mark(fmt.Sprintf("%s %s (%s) for %v", w.fault, w.node, w.target, w.length), int64(w.start.Sub(hist.start)))
	}
	c.WaitConverged(chaosConverge)
	time.Sleep(2 * time.Second) // the workload after the last fault
	stopWorkload()
	close(stopMonitor)
	<-monitorDone
	c.WaitConverged(chaosConverge)
	windowAt := func(at time.Time) int {
		return max(0, sort.Search(len(windows), func(i int) bool { return windows[i].start.After(at) })-1)
	}

	// Per fault type.
	type tally struct {
		faults, ops, violations, wronglyFailed, acksForFailed int
		noLeader, longestNoLeader                             time.Duration
		lengths                                               []time.Duration
	}
	report := map[string]*tally{}
	kinds := []string{"none"}
	for _, f := range chaosFaults {
		if f == "crash-all" {
			kinds = append(kinds, f+" all")
			continue
		}
		kinds = append(kinds, f+" leader", f+" follower")
	}
	for _, k := range kinds {
		report[k] = &tally{}
	}
	for _, w := range windows[1:] {
		r := report[w.kind()]
		r.faults++
		r.lengths = append(r.lengths, w.length)
	}
	hist.mu.Lock()
	for _, r := range hist.records {
		report[windows[windowAt(hist.start.Add(time.Duration(r.call)))].kind()].ops++
	}
	hist.mu.Unlock()
	var outage time.Duration
	for i := 1; i < len(samples); i++ {
		w := report[windows[windowAt(samples[i].at)].kind()]
		if samples[i].leader {
			outage = 0
			continue
		}
		d := samples[i].at.Sub(samples[i-1].at)
		outage += d
		w.noLeader += d
		w.longestNoLeader = max(w.longestNoLeader, outage)
	}

	// Sessions: none may have failed, and none may have been acked ACTIVE
	// after its failure was committed.
	for _, s := range sessions {
		got, err := procSession(c, c.Nodes[0], s.id)
		if err != nil {
			t.Fatalf("GetSession %s: %v", s.name, err)
		}
		if got.GetStatus() != coordinatorv1.SessionStatus_SESSION_STATUS_FAILED {
			continue
		}
		failedAt := got.GetStatusChangedAt().AsTime()
		report[windows[windowAt(failedAt)].kind()].wronglyFailed++
		sent, lastErr := s.beater.progress()
		t.Errorf("session %s failed at %s (during %s) although its client never stopped beating (%d beats sent; last stream error %v)",
			s.name, failedAt.Format("15:04:05.000"), windows[windowAt(failedAt)].kind(), sent, lastErr)
		for _, a := range s.beater.activeAcksAfter(failedAt) {
			report[windows[windowAt(a.at)].kind()].acksForFailed++
			t.Errorf("session %s failed at %s, then %s", s.name, failedAt.Format("15:04:05.000"), a)
		}
	}

	// The lock history.
	linCheckFencingOrder(t, hist.records)
	ops, stats := hist.operations()
	model := linModel()
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, chaosCheckTimeout)
	t.Logf("porcupine: %s in %v over %d operations (%d with an unknown outcome); %s",
		res, time.Since(checkStart).Round(time.Millisecond), len(ops), stats.unknownChecked, stats)
	switch res {
	case porcupine.Illegal:
		for _, at := range chaosViolations(info, ops) {
			report[windows[windowAt(hist.start.Add(time.Duration(at)))].kind()].violations++
		}
		t.Errorf("lock history is not linearizable")
		linWriteFailure(t, model, info, ops, hist)
	case porcupine.Unknown:
		t.Logf("porcupine ran out of its %v: the history is neither proven linearizable nor not", chaosCheckTimeout)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %6s %7s %10s %14s %15s %14s %15s\n", "fault", "faults", "ops", "violations", "wrongly failed", "acks for failed", "no leader", "longest outage")
	for _, k := range kinds {
		r := report[k]
		fmt.Fprintf(&b, "%-22s %6d %7d %10d %14d %15d %14v %15v\n", k, r.faults, r.ops, r.violations, r.wronglyFailed, r.acksForFailed,
			r.noLeader.Round(10*time.Millisecond), r.longestNoLeader.Round(10*time.Millisecond))
	}
	acks := 0
	for _, s := range sessions {
		acks += s.beater.ackCount()
	}
	fmt.Fprintf(&b, "%d faults in %v; %d sessions beating (%d acks), %d lock operations; porcupine: %s",
		len(windows)-1, time.Since(windows[0].start).Round(time.Second), len(sessions), acks, stats.total, res)
	t.Logf("per fault type:\n%s", b.String())
}

// chaosViolations is, for each key whose history porcupine could not
// linearize, the call time of the first operation its longest partial
// linearization leaves out.
func chaosViolations(info porcupine.LinearizationInfo, ops []porcupine.Operation) []int64 {
	var out []int64
	perKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		k := op.Input.(linInput).Key
		perKey[k] = append(perKey[k], op)
	}
	for _, partition := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, l := range partition {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == 0 {
			continue
		}
		key := longest[0].Input.(linInput).Key
		all := perKey[key]
		if len(longest) == len(all) {
			continue
		}
		in := map[int64]bool{}
		for _, op := range longest {
			in[op.Call] = true
		}
		first := int64(-1)
		for _, op := range all {
			if !in[op.Call] && (first < 0 || op.Call < first) {
				first = op.Call
			}
		}
		out = append(out, first)
	}
	return out
}
