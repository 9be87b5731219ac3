package rest_test

import (
	"context"
	"strings"
	"testing"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/gateway/internal/rest"
)

// Regression (issue 16, item 1): unset message fields are left out rather than
// written as null, while zero scalars are still written.
func TestMarshalerLeavesUnsetMessagesOut(t *testing.T) {
	m := rest.Marshaler()
	payload, _ := structpb.NewStruct(map[string]any{"i": 1})
	out, err := m.Marshal(&taskqueuev1.Task{TaskId: "t1", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, absent := range []string{"null", "claim_expires_at", "finished_at", "result"} {
		if strings.Contains(got, absent) {
			t.Errorf("marshalled task has %q: %s", absent, got)
		}
	}
	for _, present := range []string{`"priority":0`, `"state":"TASK_STATE_UNSPECIFIED"`, `"last_error":""`, `"payload":{"i":1}`} {
		if !strings.Contains(strings.ReplaceAll(got, " ", ""), present) {
			t.Errorf("marshalled task lacks %s: %s", present, got)
		}
	}
	if ct := m.(interface{ StreamContentType(any) string }).StreamContentType(nil); ct != "application/x-ndjson" {
		t.Errorf("stream content type = %q", ct)
	}
}

// Regression (issue 16, item 4): a unary error has the shape of a stream's
// error line, {"error": status}.
func TestUnaryErrorsHaveTheStreamErrorShape(t *testing.T) {
	st := &spb.Status{Code: 16, Message: "session token does not match"}
	out, err := rest.WrapError(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, ok := out.(map[string]proto.Message)
	if !ok || !proto.Equal(wrapped["error"], st) || len(wrapped) != 1 {
		t.Fatalf("wrapped error = %#v", out)
	}
	task := &taskqueuev1.Task{TaskId: "t1"}
	if out, _ := rest.WrapError(context.Background(), task); out != task {
		t.Errorf("a result was rewritten: %#v", out)
	}
}
