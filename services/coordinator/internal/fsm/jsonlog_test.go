package fsm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/internal/window"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// The fixture is a Raft log as the coordinator wrote it before log entries
// moved from JSON to protobuf, and the state it left, as that version's
// snapshot. Nodes upgraded in place replay such logs, and followers catching
// up restore such snapshots, so both must keep reading the same.
var updateJSONLog = flag.Bool("update-json-log", false, "rewrite testdata/jsonlog from jsonLogScenario with the JSON encoder")

const (
	jsonLogEntries  = "testdata/jsonlog/entries.json"
	jsonLogSnapshot = "testdata/jsonlog/snapshot.json"
)

// fixtureEntry is one log entry of the fixture: its bytes in hex, and what
// applying it answered then (an error's message, or "").
type fixtureEntry struct {
	Index   uint64 `json:"index"`
	Command string `json:"command"`
	Data    string `json:"data"`
	Err     string `json:"err"`
}

type scenarioCommand struct {
	typ CommandType
	cmd any
}

// jsonLogScenario uses every command type, their optional fields set and
// unset, and commands that fail, so that the fixture's state holds sessions in
// every status, held and freed locks, events with released locks, nodes and
// credentials.
func jsonLogScenario() []scenarioCommand {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cet := time.FixedZone("CET", 3600)
	return []scenarioCommand{
		{CmdSetNode, SetNode{Node: state.Node{ID: "node-1", GRPCAddress: "127.0.0.1:7001"}}},
		{CmdSetNode, SetNode{Node: state.Node{ID: "node-2", GRPCAddress: "127.0.0.1:7002"}}},
		{CmdRegisterSession, RegisterSession{At: at(1), Session: state.Session{
			ID: "s1", Name: "claude_1", Tier: state.TierWorker, Provider: state.ProviderClaude, MaxConcurrentTasks: 3,
			TimeWindows: []state.TimeWindow{{Days: []window.Weekday{1, 2, 3}, StartMinute: 540, EndMinute: 1020, TimeZone: "Europe/Paris"}, {StartMinute: 0, EndMinute: 60}},
			Labels:      map[string]string{"team": "web", "repo": "gaia"},
			TokenHash:   []byte{0x00, 0x01, 0xfe, 0xff, 'h'},
		}}},
		{CmdRegisterSession, RegisterSession{At: at(2), Session: state.Session{ID: "s2", Name: "codex_1", Tier: state.TierManager, Provider: state.ProviderCodex, MaxConcurrentTasks: 1, TokenHash: []byte("hash-s2")}}},
		// The leader's clock in another zone: JSON keeps the offset.
		{CmdRegisterSession, RegisterSession{At: at(3).In(cet), Session: state.Session{ID: "s3", Name: "gemini_1", Tier: state.TierHighLevel, Provider: state.ProviderGemini}}},
		{CmdRegisterSession, RegisterSession{At: at(4), Session: state.Session{ID: "s4", Name: "claude_1", Provider: state.ProviderClaude}}}, // name taken
		{CmdTransition, Transition{At: at(5), Transition: state.Transition{SessionID: "s1", To: state.StatusActive, LastBeat: at(5).Add(-time.Millisecond)}}},
		{CmdTransition, Transition{At: at(5), Transition: state.Transition{SessionID: "s2", To: state.StatusActive}}},
		{CmdAcquireLock, AcquireLock{At: at(6), Key: "repo:web/app.go", SessionID: "s1", TTL: 30 * time.Second}},
		{CmdAcquireLock, AcquireLock{At: at(6), Key: "k2", SessionID: "s2", TTL: 10 * time.Second}},
		{CmdAcquireLock, AcquireLock{At: at(7), Key: "repo:web/app.go", SessionID: "s2", TTL: time.Second}}, // held
		{CmdRenewLock, RenewLock{At: at(8), Key: "repo:web/app.go", SessionID: "s1", Fencing: 9, TTL: time.Minute}},
		{CmdRenewLock, RenewLock{At: at(9), Key: "repo:web/app.go", SessionID: "s1", Fencing: 9}},
		{CmdRenewLock, RenewLock{At: at(9), Key: "repo:web/app.go", SessionID: "s1", Fencing: 8}}, // stale
		{CmdReleaseLock, ReleaseLock{At: at(10), Key: "repo:web/app.go", SessionID: "s1", Fencing: 9}},
		{CmdReleaseLock, ReleaseLock{At: at(10), Key: "repo:web/app.go", SessionID: "s1", Fencing: 9}}, // not held
		{CmdAcquireLock, AcquireLock{At: at(11), Key: "k3", SessionID: "s1", TTL: 5 * time.Second}},
		{CmdExpireLocks, ExpireLocks{At: at(20), Locks: []LockGrant{{Key: "k2", Fencing: 10}, {Key: "k3", Fencing: 17}, {Key: "k9", Fencing: 1}}}},
		{CmdExpireLocks, ExpireLocks{At: at(21)}},
		{CmdAcquireLock, AcquireLock{At: at(22), Key: "k4", SessionID: "s3", TTL: time.Hour}},
		{CmdAcquireLock, AcquireLock{At: at(22), Key: "k5", SessionID: "s3", TTL: time.Hour}},
		{CmdTransition, Transition{At: at(23), Transition: state.Transition{SessionID: "s3", To: state.StatusSuspect}}},
		{CmdTransition, Transition{At: at(24), Transition: state.Transition{SessionID: "s3", To: state.StatusFailed}}}, // frees k4, k5
		{CmdTransition, Transition{At: at(25), Transition: state.Transition{SessionID: "s3", To: state.StatusActive}}}, // failed is final
		{CmdTransition, Transition{At: at(26), Transition: state.Transition{SessionID: "s2", To: state.StatusDeregistered}}},
		{CmdTransition, Transition{At: at(27), Transition: state.Transition{SessionID: "s1", To: state.StatusSuspect}}},
		{CmdTransition, Transition{At: at(28), Transition: state.Transition{SessionID: "s1", To: state.StatusActive, LastBeat: at(28)}}},
		{CmdTransition, Transition{At: at(28), Transition: state.Transition{SessionID: "nobody", To: state.StatusActive}}},
		{CmdRegisterSession, RegisterSession{At: at(29), Session: state.Session{ID: "s5", Name: "ollama_1", Tier: state.TierWorker, Provider: state.ProviderOllama, MaxConcurrentTasks: 2}}},
		{CmdPurgeSessions, PurgeSessions{At: at(30), Before: at(26)}}, // s3 only: s2 ended at 26
		{CmdAcquireLock, AcquireLock{At: at(31), Key: "held", SessionID: "s1", TTL: 90 * time.Second}},
		{CmdRemoveNode, RemoveNode{ID: "node-2"}},
		{CmdRemoveNode, RemoveNode{ID: "node-9"}},
		{CmdIssueCredential, IssueCredential{Credential: state.Credential{
			ID: "cred-1", Role: "teacher", Name: "Ms Ada", TeacherID: "t-1", AppID: "app-1",
			Classrooms: []string{"c1", "c2"}, Projects: []string{"p1"}, KeyID: "key-1",
			IssuedAt: at(32), ExpiresAt: at(32).Add(24 * time.Hour), IssuedBy: "admin",
		}}},
		{CmdIssueCredential, IssueCredential{Credential: state.Credential{ID: "cred-2", Role: "service", Service: "taskqueue", IssuedAt: at(33), ExpiresAt: at(33).Add(time.Hour)}}},
		{CmdIssueCredential, IssueCredential{Credential: state.Credential{ID: "cred-2", Role: "service", Service: "other", IssuedAt: at(34), ExpiresAt: at(34).Add(time.Hour)}}}, // already recorded
		{CmdRevokeCredential, RevokeCredential{At: at(35), ID: "cred-1", By: "admin"}},
		{CmdRevokeCredential, RevokeCredential{At: at(36), ID: "cred-1", By: "someone-else"}}, // already revoked
		{CmdRevokeCredential, RevokeCredential{At: at(37), ID: "cred-outside", ExpiresAt: at(37).Add(2 * time.Hour)}},
		{CmdRevokeCredential, RevokeCredential{At: at(38), ID: "cred-unknown", By: "admin"}}, // not found
		{CmdTransition, Transition{At: at(39), Transition: state.Transition{SessionID: "s5", To: state.StatusActive}}},
	}
}

// resultErr is the error a result of Apply carries, if any.
func resultErr(res any) error {
	switch r := res.(type) {
	case error:
		return r
	case RegisterResult:
		return r.Err
	case state.TransitionResult:
		return r.Err
	case LockResult:
		return r.Err
	case ReleaseResult:
		return r.Err
	case CredentialResult:
		return r.Err
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestJSONEncoderWritesTheFixture checks that the JSON encoder
// (RAFT_LOG_ENCODING=json, what a cluster runs while it upgrades) still
// writes, byte for byte, the entries of the fixture, which nodes older than
// the protobuf encoding wrote and can read. With -update-json-log it
// rewrites the fixture instead: only for a new command type, never to
// follow a change of the old encoding, which would defeat it.
func TestJSONEncoderWritesTheFixture(t *testing.T) {
	h := newHarness(t)
	var entries []fixtureEntry
	for _, c := range jsonLogScenario() {
		data, err := JSON.Encode(c.typ, c.cmd)
		if err != nil {
			t.Fatal(err)
		}
		h.index++
		res := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
		entries = append(entries, fixtureEntry{Index: h.index, Command: c.typ.String(), Data: hex.EncodeToString(data), Err: errString(resultErr(res))})
	}
	if !*updateJSONLog {
		recorded, _ := readJSONLogFixture(t)
		if len(recorded) != len(entries) {
			t.Fatalf("the scenario makes %d entries, the fixture holds %d", len(entries), len(recorded))
		}
		for i := range entries {
			if entries[i] != recorded[i] {
				t.Errorf("entry %d (%s): the JSON encoder now writes %s, the fixture holds %s", entries[i].Index, entries[i].Command, entries[i].Data, recorded[i].Data)
			}
		}
		return
	}
	out, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(jsonLogEntries), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsonLogEntries, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsonLogSnapshot, persist(t, h.fsm), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSONLogFixture(t *testing.T) (entries []fixtureEntry, snapshot []byte) {
	t.Helper()
	raw, err := os.ReadFile(jsonLogEntries)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatal(err)
	}
	snapshot, err = os.ReadFile(jsonLogSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	return entries, snapshot
}

// dumpJSON renders a state canonically, for comparing states whatever
// encoding they came through.
func dumpJSON(t *testing.T, d state.Dump) []byte {
	t.Helper()
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJSONLogFixtureStillApplies replays a log written by the JSON encoder and
// expects, entry by entry, the same answers and, at the end, the same state as
// the version that wrote it.
func TestJSONLogFixtureStillApplies(t *testing.T) {
	entries, snapshot := readJSONLogFixture(t)
	var want state.Dump
	if err := json.Unmarshal(snapshot, &want); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	f := New(state.NewStore(1000))
	for _, e := range entries {
		data, err := hex.DecodeString(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		seen[CommandType(data[0]).String()] = true
		res := f.Apply(&raft.Log{Index: e.Index, Type: raft.LogCommand, Data: data})
		if got := errString(resultErr(res)); got != e.Err {
			t.Errorf("entry %d (%s): err %q, want %q", e.Index, e.Command, got, e.Err)
		}
	}
	for _, typ := range allCommandTypes {
		if !seen[typ.String()] {
			t.Errorf("the fixture has no %s entry", typ)
		}
	}
	if got, w := dumpJSON(t, f.Store().Dump()), dumpJSON(t, want); !bytes.Equal(got, w) {
		t.Fatalf("state after replaying the fixture log differs:\n got %s\nwant %s", got, w)
	}
}

// TestJSONSnapshotFixtureStillRestores restores the snapshot the JSON-era
// coordinator wrote and expects the same state back.
func TestJSONSnapshotFixtureStillRestores(t *testing.T) {
	_, snapshot := readJSONLogFixture(t)
	var want state.Dump
	if err := json.Unmarshal(snapshot, &want); err != nil {
		t.Fatal(err)
	}
	f := New(state.NewStore(1000))
	if err := f.Restore(io.NopCloser(bytes.NewReader(snapshot))); err != nil {
		t.Fatal(err)
	}
	if got, w := dumpJSON(t, f.Store().Dump()), dumpJSON(t, want); !bytes.Equal(got, w) {
		t.Fatalf("restored state differs:\n got %s\nwant %s", got, w)
	}
	// The restored indexes work: s1's name is taken, s2's (deregistered) free.
	if _, ok := f.Store().SessionByName("claude_1"); !ok {
		t.Error("claude_1 is not found by name after restore")
	}
	if _, ok := f.Store().SessionByName("codex_1"); ok {
		t.Error("deregistered codex_1 still owns its name after restore")
	}
	if err := resultErr(f.Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: mustEncode(t, CmdAcquireLock, AcquireLock{At: t0.Add(time.Minute), Key: "held", SessionID: "s5", TTL: time.Second})})); !errors.Is(err, state.ErrLockHeld) {
		t.Errorf("acquiring s1's lock after restore: %v, want ErrLockHeld", err)
	}
}

// allCommandTypes is every command type the log may carry.
var allCommandTypes = []CommandType{
	CmdRegisterSession, CmdTransition, CmdAcquireLock, CmdRenewLock, CmdReleaseLock, CmdExpireLocks,
	CmdSetNode, CmdRemoveNode, CmdPurgeSessions, CmdIssueCredential, CmdRevokeCredential,
}

func mustEncode(t testing.TB, typ CommandType, cmd any) []byte {
	t.Helper()
	b, err := Encode(typ, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
