package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/internal/window"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// everyCommand is each command type with every field set, and each with no
// field set; times are in UTC, as protobuf gives them back.
func everyCommand() []scenarioCommand {
	at := t0.Add(1500 * time.Millisecond).Add(7) // nanoseconds survive
	full := []scenarioCommand{
		{CmdRegisterSession, RegisterSession{At: at, Session: state.Session{
			ID: "s1", Name: "claude_1", Tier: state.TierWorker, Provider: state.ProviderClaude, MaxConcurrentTasks: 3,
			TimeWindows: []state.TimeWindow{{Days: []window.Weekday{1, 7}, StartMinute: 540, EndMinute: 1020, TimeZone: "Europe/Paris"}, {StartMinute: 0, EndMinute: 60}},
			Labels:      map[string]string{"team": "web", "repo": "gaia", "": "empty key"},
			TokenHash:   []byte{0x00, 0x01, 0xfe, 0xff},
			Status:      state.StatusSuspect, ConsecutiveFailures: 2,
			RegisteredAt: at.Add(-time.Hour), RegisteredIndex: 1 << 40, StatusChangedAt: at.Add(-time.Minute), LastHeartbeatAt: at.Add(-time.Second),
		}}},
		{CmdTransition, Transition{At: at, Transition: state.Transition{SessionID: "s1", To: state.StatusFailed, LastBeat: at.Add(-time.Millisecond)}}},
		{CmdAcquireLock, AcquireLock{At: at, Key: "repo:web/app.go", SessionID: "s1", TTL: 90 * time.Second}},
		{CmdRenewLock, RenewLock{At: at, Key: "k", SessionID: "s1", Fencing: 1<<64 - 1, TTL: time.Hour}},
		{CmdReleaseLock, ReleaseLock{At: at, Key: "k", SessionID: "s1", Fencing: 42}},
		{CmdExpireLocks, ExpireLocks{At: at, Locks: []LockGrant{{Key: "a", Fencing: 1}, {Key: "b", Fencing: 2}, {Key: "", Fencing: 0}}}},
		{CmdSetNode, SetNode{Node: state.Node{ID: "node-2", GRPCAddress: "[::1]:7002"}}},
		{CmdRemoveNode, RemoveNode{ID: "node-2"}},
		{CmdPurgeSessions, PurgeSessions{At: at, Before: at.Add(-time.Hour)}},
		{CmdIssueCredential, IssueCredential{Credential: state.Credential{
			ID: "cred-1", Role: "teacher", Name: "Ms Ada", TeacherID: "t-1", AppID: "app-1",
			Classrooms: []string{"c1", "c2"}, Projects: []string{"p1"}, Service: "svc", KeyID: "key-1",
			IssuedAt: at, ExpiresAt: at.Add(24 * time.Hour), IssuedBy: "admin", RevokedAt: at.Add(time.Hour), RevokedBy: "root",
		}}},
		{CmdRevokeCredential, RevokeCredential{At: at, ID: "cred-1", By: "admin", ExpiresAt: at.Add(time.Hour)}},
	}
	empty := []scenarioCommand{
		{CmdRegisterSession, RegisterSession{Session: state.Session{TokenHash: []byte{}}}},
		{CmdTransition, Transition{}},
		{CmdAcquireLock, AcquireLock{}},
		{CmdRenewLock, RenewLock{}},
		{CmdReleaseLock, ReleaseLock{}},
		{CmdExpireLocks, ExpireLocks{}},
		{CmdSetNode, SetNode{}},
		{CmdRemoveNode, RemoveNode{}},
		{CmdPurgeSessions, PurgeSessions{}},
		{CmdIssueCredential, IssueCredential{}},
		{CmdRevokeCredential, RevokeCredential{}},
	}
	return append(full, empty...)
}

// decodeAs decodes an entry's body into a new command of cmd's type.
func decodeAs(t *testing.T, data []byte, cmd any) any {
	t.Helper()
	p := reflect.New(reflect.TypeOf(cmd))
	if err := decodeBody(data[1:], p.Interface()); err != nil {
		t.Fatalf("decode %T: %v", cmd, err)
	}
	return p.Elem().Interface()
}

// TestEncodingRoundTripsEveryCommand encodes every command type, fully set
// and empty, in both encodings, and expects the framing the log format says
// and the command back.
func TestEncodingRoundTripsEveryCommand(t *testing.T) {
	covered := map[CommandType]bool{}
	for _, enc := range []Encoding{Protobuf, JSON} {
		for i, c := range everyCommand() {
			t.Run(fmt.Sprintf("%s/%s/%d", enc, c.typ, i), func(t *testing.T) {
				covered[c.typ] = true
				data, err := enc.Encode(c.typ, c.cmd)
				if err != nil {
					t.Fatal(err)
				}
				if CommandType(data[0]) != c.typ {
					t.Fatalf("first byte %d, want the command type %d", data[0], c.typ)
				}
				wantFormat := map[Encoding]byte{Protobuf: formatProtobuf, JSON: '{'}[enc]
				if data[1] != wantFormat {
					t.Fatalf("second byte %#x, want %#x", data[1], wantFormat)
				}
				want := c.cmd
				if enc == Protobuf {
					// Protobuf has no empty-but-present bytes.
					if r, ok := want.(RegisterSession); ok && len(r.Session.TokenHash) == 0 {
						r.Session.TokenHash = nil
						want = r
					}
				}
				if got := decodeAs(t, data, c.cmd); !reflect.DeepEqual(got, want) {
					t.Fatalf("round trip changed the command:\n got %#v\nwant %#v", got, want)
				}
			})
		}
	}
	for _, typ := range allCommandTypes {
		if !covered[typ] {
			t.Errorf("no round trip of %s", typ)
		}
	}
}

// TestProtobufKeepsInstantsNotZones: a leader's time in another zone comes
// back as the same instant, in UTC.
func TestProtobufKeepsInstantsNotZones(t *testing.T) {
	at := t0.In(time.FixedZone("CET", 3600))
	data := mustEncode(t, CmdPurgeSessions, PurgeSessions{At: at, Before: at})
	got := decodeAs(t, data, PurgeSessions{}).(PurgeSessions)
	if !got.At.Equal(at) || got.At.Location() != time.UTC {
		t.Fatalf("decoded %v, want %v in UTC", got.At, at)
	}
}

// TestProtobufEncodesWhatJSONCannotCarry: protobuf refuses strings that are
// not UTF-8; such a command is written as JSON, as before, instead of failing.
func TestProtobufFallsBackToJSONForInvalidUTF8(t *testing.T) {
	data := mustEncode(t, CmdRemoveNode, RemoveNode{ID: "node-\xff"})
	if data[1] != '{' {
		t.Fatalf("entry %q: want the JSON form", data)
	}
	h := newHarness(t)
	h.index++
	if res := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}); res != nil {
		t.Fatalf("apply: %v", res)
	}
}

// TestProtobufLogAppliesLikeJSONLog applies the fixture's scenario written in
// protobuf and expects the state the JSON log left, up to zone offsets.
func TestProtobufLogAppliesLikeJSONLog(t *testing.T) {
	entries, snapshot := readJSONLogFixture(t)
	var want state.Dump
	if err := json.Unmarshal(snapshot, &want); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	for i, c := range jsonLogScenario() {
		data := mustEncode(t, c.typ, c.cmd)
		if data[1] != formatProtobuf {
			t.Fatalf("entry %d is not protobuf", i+1)
		}
		h.index++
		res := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data})
		if got := errString(resultErr(res)); got != entries[i].Err {
			t.Errorf("entry %d (%s): err %q, want %q", h.index, c.typ, got, entries[i].Err)
		}
	}
	if got, w := utcJSON(t, dumpJSON(t, h.fsm.Store().Dump())), utcJSON(t, dumpJSON(t, want)); !bytes.Equal(got, w) {
		t.Fatalf("state differs:\n got %s\nwant %s", got, w)
	}
}

// utcJSON rewrites every RFC 3339 time in a JSON document in UTC.
func utcJSON(t *testing.T, doc []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if ts, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return ts.UTC().Format(time.RFC3339Nano)
			}
		}
		return v
	}
	out, err := json.MarshalIndent(walk(v), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzEncodingRoundTrip encodes a lock renewal and a registration built from
// arbitrary values and expects them back from protobuf (times as instants).
func FuzzEncodingRoundTrip(f *testing.F) {
	f.Add("repo:web/app.go", "s1", uint64(2), int64(time.Minute), int64(1_800_000_000), int64(5), "claude_1", []byte("hash"))
	f.Add("", "", uint64(0), int64(0), int64(0), int64(0), "", []byte(nil))
	f.Add("k\x00", "\xff", uint64(1<<63), int64(-1), int64(-62135596800), int64(999_999_999), "名前", []byte{0})
	f.Fuzz(func(t *testing.T, key, session string, fencing uint64, ttl, sec, nsec int64, name string, hash []byte) {
		at := time.Unix(sec, nsec%1_000_000_000).UTC()
		renew := RenewLock{At: at, Key: key, SessionID: session, Fencing: fencing, TTL: time.Duration(ttl)}
		data := mustEncode(t, CmdRenewLock, renew)
		got := decodeAs(t, data, RenewLock{}).(RenewLock)
		if data[1] == '{' {
			return // not UTF-8: JSON, which replaces such bytes
		}
		if !got.At.Equal(renew.At) || got.Key != key || got.SessionID != session || got.Fencing != fencing || got.TTL != renew.TTL {
			t.Fatalf("renewal %+v came back as %+v", renew, got)
		}
		reg := RegisterSession{At: at, Session: state.Session{ID: session, Name: name, TokenHash: hash, Labels: map[string]string{key: name}}}
		data = mustEncode(t, CmdRegisterSession, reg)
		if data[1] == '{' {
			return
		}
		r := decodeAs(t, data, RegisterSession{}).(RegisterSession)
		if !r.At.Equal(at) || r.Session.ID != session || r.Session.Name != name || !bytes.Equal(r.Session.TokenHash, hash) || r.Session.Labels[key] != name {
			t.Fatalf("registration %+v came back as %+v", reg, r)
		}
	})
}
