package reqfield_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
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
