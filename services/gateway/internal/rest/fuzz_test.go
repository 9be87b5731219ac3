package rest

import (
	"bytes"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// requestTypes is every request message of every GAIA service, sorted by
// name: what the gateway decodes REST bodies and query strings into. It is
// read from the registered descriptors, so a new RPC is fuzzed without
// touching this file.
var requestTypes = func() []protoreflect.MessageType {
	seen := map[protoreflect.FullName]bool{}
	var out []protoreflect.MessageType
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "gaia.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			methods := fd.Services().Get(i).Methods()
			for j := 0; j < methods.Len(); j++ {
				in := methods.Get(j).Input()
				if seen[in.FullName()] {
					continue
				}
				seen[in.FullName()] = true
				if mt, err := protoregistry.GlobalTypes.FindMessageByName(in.FullName()); err == nil {
					out = append(out, mt)
				}
			}
		}
		return true
	})
	slices.SortFunc(out, func(a, b protoreflect.MessageType) int {
		return strings.Compare(string(a.Descriptor().FullName()), string(b.Descriptor().FullName()))
	})
	return out
}()

// requestType picks a request type by number, wrapping around.
func requestType(which uint16) protoreflect.MessageType {
	return requestTypes[int(which)%len(requestTypes)]
}

// indexOf is a request type's number, for seeds.
func indexOf(t testing.TB, name string) uint16 {
	t.Helper()
	for i, mt := range requestTypes {
		if string(mt.Descriptor().FullName()) == name {
			return uint16(i)
		}
	}
	t.Fatalf("no request type %s", name)
	return 0
}

func TestEveryServiceHasRequestTypesToFuzz(t *testing.T) {
	for _, want := range []string{
		"gaia.coordinator.v1.RegisterSessionRequest", "gaia.coordinator.v1.AcquireLockRequest", "gaia.coordinator.v1.AddVoterRequest",
		"gaia.taskqueue.v1.EnqueueTaskRequest", "gaia.taskqueue.v1.SetSessionAffinityRequest",
		"gaia.metrics.v1.RecordMetricsRequest", "gaia.dashboard.v1.ResolveAlertRequest",
	} {
		indexOf(t, want)
	}
	if len(requestTypes) < 40 {
		t.Errorf("only %d request types found", len(requestTypes))
	}
}

// bodySeeds are request bodies as clients send them (README, tests).
var bodySeeds = []struct {
	msg  string
	body string
}{
	{"gaia.coordinator.v1.RegisterSessionRequest", `{"name":"claude_1","tier":"SESSION_TIER_WORKER","provider":"PROVIDER_CLAUDE","max_concurrent_tasks":2,"time_windows":[{"days":["WEEKDAY_MONDAY"],"start_minute":540,"end_minute":1020,"time_zone":"Europe/Paris"}],"labels":{"team":"web"}}`},
	{"gaia.coordinator.v1.AcquireLockRequest", `{"key":"repo:web/src/app.go","session_id":"s-1","session_token":"tok","ttl":"60s","wait_timeout":"1.5s"}`},
	{"gaia.coordinator.v1.RenewLockRequest", `{"key":"k","session_id":"s","session_token":"t","fencing_token":"18446744073709551615","ttl":"10s"}`},
	{"gaia.coordinator.v1.AddVoterRequest", `{"node_id":"node-4","raft_address":"10.0.0.4:8300","grpc_address":"10.0.0.4:7001"}`},
	{"gaia.taskqueue.v1.EnqueueTaskRequest", `{"idempotency_key":"lesson-42/step-1","task_type":"code_review","payload":{"file":"app.go","locks":["repo:web"]},"priority":10,"run_at":"2026-12-01T06:00:00Z","max_attempts":3,"claim_timeout":"600s"}`},
	{"gaia.taskqueue.v1.EnqueueTasksRequest", `{"tasks":[{"idempotency_key":"a","task_type":"t"},{"idempotency_key":"b","task_type":"t","priority":-1}]}`},
	{"gaia.taskqueue.v1.ClaimTasksRequest", `{"session_id":"s","session_token":"t","task_types":["exercise"],"max_tasks":5,"wait":"30s"}`},
	{"gaia.taskqueue.v1.CompleteTaskRequest", `{"task_id":"0b9c1c52-0f1e-4d6e-9a83-0f5c1f5b8c0e","claim_token":"0b9c1c52-0f1e-4d6e-9a83-0f5c1f5b8c0e.1","result":{"exit_code":0}}`},
	{"gaia.taskqueue.v1.SetSessionAffinityRequest", `{"session_name":"claude_1","lesson_id":"l","score":75.5,"time_window":{"start_minute":1320,"end_minute":360,"days":[5]}}`},
	{"gaia.metrics.v1.RecordMetricsRequest", `{"events":[{"event_id":"e1","app_id":"a","classroom_id":"c","student_id":"s","item_id":"i","kind":"EVENT_KIND_CLICK","x":10,"y":-5,"occurred_at":"2026-12-01T06:00:00.123Z","attrs":{"action":"start"}}]}`},
	{"gaia.metrics.v1.SubmitRatingRequest", `{"student_id":"s","classroom_id":"c","app_id":"a","item_id":"i","rating":2,"feedback":"too hard"}`},
	{"gaia.dashboard.v1.ResolveAlertRequest", `{"alert_id":"42","outcome":"helped","notes":"sat with the student"}`},
}

// FuzzDecodeRequestBody feeds arbitrary bytes to the gateway's JSON decoder
// for every request type: it must never panic, and what it accepts must
// encode and decode back to the same message (so that what the backend
// validates is what the client sent).
func FuzzDecodeRequestBody(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add(indexOf(f, s.msg), []byte(s.body))
	}
	m := Marshaler()
	f.Fuzz(func(t *testing.T, which uint16, body []byte) {
		mt := requestType(which)
		msg := mt.New().Interface()
		if err := m.NewDecoder(bytes.NewReader(body)).Decode(msg); err != nil {
			return
		}
		out, err := m.Marshal(msg)
		if err != nil {
			t.Fatalf("%s decoded from %q does not encode: %v", mt.Descriptor().FullName(), body, err)
		}
		again := mt.New().Interface()
		if err := m.Unmarshal(out, again); err != nil {
			t.Fatalf("%s: the gateway's own encoding %s does not decode: %v", mt.Descriptor().FullName(), out, err)
		}
		if out2, err := m.Marshal(again); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("%s does not survive a round trip: %s then %s (%v)", mt.Descriptor().FullName(), out, out2, err)
		}
	})
}

// FuzzBodyDecoderMatchesGrpcGateway holds the one-pass decoder of a Body to
// grpc-gateway's own JSON decoder: for any bytes and request type, the same
// message or the same error, and the same answer to a second Decode.
func FuzzBodyDecoderMatchesGrpcGateway(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add(indexOf(f, s.msg), []byte(s.body))
	}
	metrics := indexOf(f, "gaia.metrics.v1.RecordMetricsRequest")
	for _, body := range []string{"", " \n", "{}", " {} \n", "{}{}", "{} x", "null", "[]", `{"events":[`, `{"events":[{"x":1e999}]}`,
		`{"events":[{"event_id":"a","event_id":"b"}]}`, `{"nope":1}`, "{\"events\":[{\"event_id\":\"\xff\"}]}", "\xef\xbb\xbf{}"} {
		f.Add(metrics, []byte(body))
	}
	m := Marshaler()
	theirs := m.(ndjson).JSONPb
	f.Fuzz(func(t *testing.T, which uint16, body []byte) {
		mt := requestType(which)
		got, want := mt.New().Interface(), mt.New().Interface()
		gotDec, wantDec := m.NewDecoder(NewBody(body)), theirs.NewDecoder(bytes.NewReader(body))
		gotErr, wantErr := gotDec.Decode(got), wantDec.Decode(want)
		if errText(gotErr) != errText(wantErr) || !proto.Equal(got, want) {
			t.Fatalf("%s from %q: got %v, %v; grpc-gateway's decoder: %v, %v", mt.Descriptor().FullName(), body, got, gotErr, want, wantErr)
		}
		again, againWant := mt.New().Interface(), mt.New().Interface()
		if g, w := errText(gotDec.Decode(again)), errText(wantDec.Decode(againWant)); g != w {
			t.Fatalf("%s from %q: second Decode: %s, grpc-gateway's decoder: %s", mt.Descriptor().FullName(), body, g, w)
		}
	})
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// querySeeds are query strings of the GET routes.
var querySeeds = []struct {
	msg   string
	query string
}{
	{"gaia.coordinator.v1.ListSessionsRequest", "status=SESSION_STATUS_ACTIVE&tier=SESSION_TIER_WORKER&available_only=true&page_size=50&page_token=abc"},
	{"gaia.coordinator.v1.GetLockRequest", "key=repo%3Aweb%2Fsrc"},
	{"gaia.coordinator.v1.WatchSessionsRequest", "after_index=18446744073709551615"},
	{"gaia.taskqueue.v1.ListTasksRequest", "states=TASK_STATE_DEAD&states=TASK_STATE_PENDING&task_types=a&lesson_id=l&page_size=3"},
	{"gaia.taskqueue.v1.GetTaskRequest", "idempotency_key=lesson-42%2Fstep-1"},
	{"gaia.metrics.v1.GetRatingSummaryRequest", "classroom_id=c&app_id=a&since=2026-12-01T00:00:00Z"},
	{"gaia.dashboard.v1.ListAlertsRequest", "teacher_id=t&classroom_ids=a&classroom_ids=b&min_severity=SEVERITY_HIGH"},
}

// FuzzDecodeQuery feeds arbitrary query strings to the gateway's query
// parameter decoding for every request type: it must never panic.
func FuzzDecodeQuery(f *testing.F) {
	for _, s := range querySeeds {
		f.Add(indexOf(f, s.msg), s.query)
	}
	f.Fuzz(func(t *testing.T, which uint16, query string) {
		values, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		msg := requestType(which).New().Interface()
		_ = runtime.PopulateQueryParameters(msg, values, utilities.NewDoubleArray(nil))
	})
}
