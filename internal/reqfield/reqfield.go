// Package reqfield reads the request fields every GAIA service shares
// (optional durations and timestamps, page sizes and page tokens, the
// session_id/session_token pair) and refuses bad ones with
// an INVALID_ARGUMENT domain error that names the field. It owns no state.
package reqfield

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Page sizes of every List RPC.
const (
	MaxPageSize     = 1000
	DefaultPageSize = 100
)

// Duration reads an optional duration: unset is def; set must lie in [lo, hi].
func Duration(field string, d *durationpb.Duration, def, lo, hi time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, domainerr.Invalid(field, err.Error())
	}
	v := d.AsDuration()
	if v < lo || v > hi {
		return 0, domainerr.Invalid(field, fmt.Sprintf("must be between %s and %s, got %s", lo, hi, v))
	}
	return v, nil
}

// Timestamp reads an optional timestamp: unset is the zero time.
func Timestamp(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, domainerr.Invalid(field, err.Error())
	}
	return ts.AsTime(), nil
}

// PageSize reads page_size: 0 is DefaultPageSize, otherwise 1..MaxPageSize.
func PageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, domainerr.Invalid("page_size", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
	}
	return int(n), nil
}

// Label selector limits: as many pairs as a session may carry, keys and
// values as long as a session's labels may be.
const (
	MaxSelectorLabels = 32
	MaxLabelKey       = 63
	MaxLabelValue     = 256
)

// LabelSelector reads a label selector ("team=web,tier=gpu": comma-separated
// key=value pairs, every one of which must match) into a map; empty is no
// selector. A key given twice with different values can match nothing and is
// refused.
func LabelSelector(field, sel string) (map[string]string, error) {
	if sel == "" {
		return nil, nil
	}
	if err := Text(field, sel); err != nil {
		return nil, err
	}
	pairs := strings.Split(sel, ",")
	if len(pairs) > MaxSelectorLabels {
		return nil, domainerr.Invalid(field, fmt.Sprintf("has %d labels, at most %d", len(pairs), MaxSelectorLabels))
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "":
			return nil, domainerr.Invalid(field, fmt.Sprintf("%q is not key=value (write team=web,tier=gpu)", p))
		case TooLong(k, MaxLabelKey):
			return nil, domainerr.Invalid(field, fmt.Sprintf("key %q is longer than %d characters", k, MaxLabelKey))
		case TooLong(v, MaxLabelValue):
			return nil, domainerr.Invalid(field, fmt.Sprintf("value of %q is longer than %d characters", k, MaxLabelValue))
		}
		if prev, dup := out[k]; dup && prev != v {
			return nil, domainerr.Invalid(field, fmt.Sprintf("key %q is given twice with different values", k))
		}
		out[k] = v
	}
	return out, nil
}

// TooLong says whether s holds more than max characters, the unit the
// protos give lengths in. It bounds the bytes first (a character is at most
// four), so that a huge string is refused without being counted.
func TooLong(s string, max int) bool {
	return len(s) > utf8.UTFMax*max || utf8.RuneCountInString(s) > max
}
