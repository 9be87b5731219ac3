package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gaia-platform/gaia/internal/window"
)

// FuzzParseTimeWindow feeds arbitrary --window values to the CLI's parser:
// it never panics, every window it accepts is one the services accept too
// (a flag that parses must not be refused by the server), and the CLI's own
// display of the window reads back as the same window.
func FuzzParseTimeWindow(f *testing.F) {
	for _, s := range []string{
		"09:00-17:00", "mon-fri 09:00-17:30 Europe/Paris", "sat,sun 22:00-06:00 America/New_York", "00:00-24:00",
		"fri-mon 9:00-10:00", "mon, wed 10:00-00:00 UTC", "24:00-01:00", "10:00-10:00", "mon 10:00-11:00 Local",
		"tuesday 23:59-00:00 Asia/Kolkata", "mon-mon 01:00-02:00", "x 1:00-2:00", "10:60-11:00", "+1:00-2:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pw, err := parseTimeWindow(s)
		if err != nil {
			return
		}
		if _, err := window.FromProto(pw); err != nil {
			t.Fatalf("--window %q parses to %v, which the services refuse: %v", s, pw, err)
		}
		shown := strings.TrimPrefix(formatTimeWindow(pw), "every day ")
		again, err := parseTimeWindow(shown)
		if err != nil {
			t.Fatalf("--window %q is shown as %q, which does not parse: %v", s, shown, err)
		}
		if pw.GetTimeZone() == "" {
			pw.TimeZone = "UTC" // shown explicitly
		}
		if !proto.Equal(pw, again) {
			t.Fatalf("--window %q: %v is shown as %q, which reads back as %v", s, pw, shown, again)
		}
	})
}
