package reqfield_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
)

func TestDuration(t *testing.T) {
	cases := []struct {
		in      *durationpb.Duration
		want    time.Duration
		wantErr bool
	}{
		{nil, 7 * time.Second, false},
		{durationpb.New(time.Second), time.Second, false},
		{durationpb.New(0), 0, true},
		{durationpb.New(-time.Second), 0, true},
		{durationpb.New(time.Hour), 0, true},
		{&durationpb.Duration{Seconds: 1, Nanos: -1}, 0, true},
	}
	for _, c := range cases {
		got, err := reqfield.Duration("ttl", c.in, 7*time.Second, time.Second, time.Minute)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("Duration(%v) = %v, %v", c.in, got, err)
		}
		if err != nil && (domainerr.KindOf(err) != domainerr.InvalidArgument || !strings.Contains(err.Error(), "ttl")) {
			t.Errorf("error %v does not name ttl as invalid", err)
		}
	}
}

func TestTimestampAndPageSize(t *testing.T) {
	if got, err := reqfield.Timestamp("run_at", nil); err != nil || !got.IsZero() {
		t.Fatalf("unset timestamp = %v, %v", got, err)
	}
	if _, err := reqfield.Timestamp("run_at", &timestamppb.Timestamp{Seconds: -1 << 62}); err == nil || !strings.Contains(err.Error(), "run_at") {
		t.Fatalf("out-of-range timestamp: %v", err)
	}
	for in, want := range map[int32]int{0: reqfield.DefaultPageSize, 1: 1, 1000: 1000} {
		if got, err := reqfield.PageSize(in); err != nil || got != want {
			t.Errorf("PageSize(%d) = %d, %v", in, got, err)
		}
	}
	for _, in := range []int32{-1, 1001} {
		if _, err := reqfield.PageSize(in); err == nil || !strings.Contains(err.Error(), "page_size") {
			t.Errorf("PageSize(%d) accepted: %v", in, err)
		}
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	for _, parts := range [][]string{{"locks/a"}, {"name", "id"}, {"first", "last\x00holds the separator"}} {
		got, err := reqfield.ParsePageToken(reqfield.PageToken(parts...), len(parts))
		if err != nil || !slices.Equal(got, parts) {
			t.Errorf("ParsePageToken(PageToken(%q)) = %q, %v", parts, got, err)
		}
	}
	if got, err := reqfield.ParsePageToken("", 2); got != nil || err != nil {
		t.Errorf("empty token = %q, %v; want the first page", got, err)
	}
	for _, tok := range []string{"%%%", reqfield.PageToken("one part")} {
		if _, err := reqfield.ParsePageToken(tok, 2); domainerr.KindOf(err) != domainerr.InvalidArgument || !strings.Contains(err.Error(), "page_token") {
			t.Errorf("ParsePageToken(%q) = %v, want INVALID_ARGUMENT on page_token", tok, err)
		}
	}
}

func TestSessionRef(t *testing.T) {
	tests := []struct {
		id, token, wantField string
	}{
		{"s-1", "tok", ""},
		{"", "tok", "session_id"},
		{strings.Repeat("x", reqfield.MaxSessionIDLen+1), "tok", "session_id"},
		{strings.Repeat("x", reqfield.MaxSessionIDLen), "", "session_token"},
	}
	for _, tt := range tests {
		err := reqfield.SessionRef(tt.id, tt.token)
		if tt.wantField == "" {
			if err != nil {
				t.Errorf("SessionRef(%q, %q) = %v, want nil", tt.id, tt.token, err)
			}
			continue
		}
		if domainerr.KindOf(err) != domainerr.InvalidArgument || !strings.Contains(err.Error(), tt.wantField) {
			t.Errorf("SessionRef(%q, %q) = %v, want INVALID_ARGUMENT on %s", tt.id, tt.token, err, tt.wantField)
		}
	}
}

// Regression (issue 16, item 6): the REST session filter is a label selector a
// generated client can send, refused with the field named when malformed.
func TestLabelSelector(t *testing.T) {
	got, err := reqfield.LabelSelector("label_selector", "team=web, tier=gpu,empty=")
	if err != nil || len(got) != 3 || got["team"] != "web" || got["tier"] != "gpu" || got["empty"] != "" {
		t.Fatalf("LabelSelector = %v, %v", got, err)
	}
	if got, err := reqfield.LabelSelector("label_selector", ""); err != nil || got != nil {
		t.Fatalf("empty selector = %v, %v", got, err)
	}
	for _, bad := range []string{"team", "=web", "team=web,,tier=gpu", "a=1,a=2", strings.Repeat("k", 64) + "=v", "k=" + strings.Repeat("v", 257), strings.Repeat("a=b,", 33)} {
		_, err := reqfield.LabelSelector("label_selector", bad)
		if err == nil || domainerr.KindOf(err) != domainerr.InvalidArgument || !strings.Contains(err.Error(), "label_selector") {
			t.Errorf("LabelSelector(%q) = %v, want INVALID_ARGUMENT naming label_selector", bad, err)
		}
	}
}

// TestLengthsCountCharactersNotBytes: a label value of 200 "é" (400 bytes)
// was refused as "longer than 256 characters".
func TestLengthsCountCharactersNotBytes(t *testing.T) {
	e := func(n int) string { return strings.Repeat("é", n) }
	if _, err := reqfield.LabelSelector("label_selector", "k="+e(reqfield.MaxLabelValue)); err != nil {
		t.Errorf("value of %d two-byte characters: %v, want accepted", reqfield.MaxLabelValue, err)
	}
	if _, err := reqfield.LabelSelector("label_selector", e(reqfield.MaxLabelKey)+"=v"); err != nil {
		t.Errorf("key of %d two-byte characters: %v, want accepted", reqfield.MaxLabelKey, err)
	}
	if _, err := reqfield.LabelSelector("label_selector", "k="+e(reqfield.MaxLabelValue+1)); err == nil {
		t.Error("value one character too long was accepted")
	}
	if err := reqfield.SessionRef(e(reqfield.MaxSessionIDLen), "tok"); err != nil {
		t.Errorf("session id of %d two-byte characters: %v, want accepted", reqfield.MaxSessionIDLen, err)
	}
	for _, tt := range []struct {
		s    string
		max  int
		want bool
	}{
		{e(10), 10, false}, {e(11), 10, true}, {strings.Repeat("😀", 10), 10, false},
		{strings.Repeat("x", 41), 10, true}, {strings.Repeat("x", 1<<20), 10, true},
	} {
		if got := reqfield.TooLong(tt.s, tt.max); got != tt.want {
			t.Errorf("TooLong(%d bytes, %d runes, max %d) = %v, want %v", len(tt.s), len([]rune(tt.s)), tt.max, got, tt.want)
		}
	}
}

// TestStructTextNamesTheNestedValue: a NUL inside a Struct, at any depth,
// reached PostgreSQL's jsonb (which refuses it) and came back as INTERNAL.
func TestStructTextNamesTheNestedValue(t *testing.T) {
	s, err := structpb.NewStruct(map[string]any{"ok": "fine", "a": map[string]any{"b": []any{1, "x\x00"}}})
	if err != nil {
		t.Fatal(err)
	}
	var de *domainerr.Error
	if err := reqfield.Struct("payload", s); !errors.As(err, &de) || de.Field != "payload.a.b[1]" {
		t.Errorf("Struct = %v, want INVALID_ARGUMENT on payload.a.b[1]", err)
	}
	if err := reqfield.Text("reason", "caf\xe9"); !errors.As(err, &de) || de.Field != "reason" {
		t.Errorf("Text(invalid UTF-8) = %v, want INVALID_ARGUMENT on reason", err)
	}
	if err := reqfield.Text("reason", "café ☕"); err != nil {
		t.Errorf("Text(valid) = %v", err)
	}
}
