package fsm

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// benchCommands are the commands the coordinator writes most: a
// registration as RegisterSession builds it, a liveness transition, and a
// lock cycle.
func benchCommands() []scenarioCommand {
	at := t0.Add(time.Second)
	return []scenarioCommand{
		{CmdRegisterSession, RegisterSession{At: at, Session: state.Session{
			ID: "0b6f7c1e-5a43-4c0e-9b7e-3f1d2a6c8e90", Name: "claude_worker_0042", Tier: state.TierWorker, Provider: state.ProviderClaude,
			MaxConcurrentTasks: 2, Labels: map[string]string{"team": "web"}, TokenHash: make([]byte, 32),
		}}},
		{CmdTransition, Transition{At: at, Transition: state.Transition{SessionID: "0b6f7c1e-5a43-4c0e-9b7e-3f1d2a6c8e90", To: state.StatusActive, LastBeat: at}}},
		{CmdAcquireLock, AcquireLock{At: at, Key: "repo:web/app.go", SessionID: "0b6f7c1e-5a43-4c0e-9b7e-3f1d2a6c8e90", TTL: 30 * time.Second}},
		{CmdReleaseLock, ReleaseLock{At: at, Key: "repo:web/app.go", SessionID: "0b6f7c1e-5a43-4c0e-9b7e-3f1d2a6c8e90", Fencing: 12345}},
	}
}

// BenchmarkEncode is the leader's cost to frame a command, in each encoding;
// bytes/entry is the entry's size, which every node writes to its log and the
// leader sends to each follower.
func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCommands() {
		for _, enc := range []Encoding{JSON, Protobuf} {
			b.Run(fmt.Sprintf("cmd=%s/enc=%s", c.typ, enc), func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					data, err := enc.Encode(c.typ, c.cmd)
					if err != nil {
						b.Fatal(err)
					}
					n = len(data)
				}
				b.ReportMetric(float64(n), "bytes/entry")
			})
		}
	}
}

// BenchmarkDecode is every node's cost to decode an entry's command.
func BenchmarkDecode(b *testing.B) {
	for _, c := range benchCommands() {
		for _, enc := range []Encoding{JSON, Protobuf} {
			b.Run(fmt.Sprintf("cmd=%s/enc=%s", c.typ, enc), func(b *testing.B) {
				data, err := enc.Encode(c.typ, c.cmd)
				if err != nil {
					b.Fatal(err)
				}
				p := reflect.New(reflect.TypeOf(c.cmd)).Interface()
				b.ReportAllocs()
				for b.Loop() {
					if err := decodeBody(data[1:], p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkApply is every node's whole cost of an entry: decoding and
// applying it to the store. One op is a registration, its first transition
// and an acquire and release of a lock: four entries.
func BenchmarkApply(b *testing.B) {
	for _, enc := range []Encoding{JSON, Protobuf} {
		b.Run("enc="+enc.String(), func(b *testing.B) {
			f := New(state.NewStore(1000))
			at := t0.Add(time.Second)
			const batch = 1 << 12
			entries := make([][]byte, 0, 4*batch)
			encode := func(t CommandType, cmd any) {
				data, err := enc.Encode(t, cmd)
				if err != nil {
					b.Fatal(err)
				}
				entries = append(entries, data)
			}
			var index uint64
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%batch == 0 { // encoding is not measured here
					b.StopTimer()
					entries = entries[:0]
					for j := range batch {
						id := fmt.Sprintf("session-%08d", i+j)
						encode(CmdRegisterSession, RegisterSession{At: at, Session: state.Session{ID: id, Name: id, Tier: state.TierWorker, Provider: state.ProviderClaude, MaxConcurrentTasks: 2, TokenHash: make([]byte, 32)}})
						encode(CmdTransition, Transition{At: at, Transition: state.Transition{SessionID: id, To: state.StatusActive, LastBeat: at}})
						encode(CmdAcquireLock, AcquireLock{At: at, Key: "lock-" + id, SessionID: id, TTL: 30 * time.Second})
						encode(CmdReleaseLock, ReleaseLock{At: at, Key: "lock-" + id, SessionID: id, Fencing: index + uint64(4*j) + 3})
					}
					b.StartTimer()
				}
				for _, data := range entries[4*(i%batch) : 4*(i%batch)+4] {
					index++
					if err := resultErr(f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
