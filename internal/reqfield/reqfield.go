// Package reqfield reads the request fields every GAIA service shares
// (optional durations and timestamps, page sizes and page tokens, the
// session_id/session_token pair) and refuses bad ones with
// an INVALID_ARGUMENT domain error that names the field. It owns no state.
package reqfield

import (
	"fmt"
	"time"

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
