package reqfield

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// FuzzParsePageToken: any page_token a client sends either decodes into the
// number of parts asked for or is INVALID_ARGUMENT on page_token; and the
// parts PageToken encodes come back as they were.
func FuzzParsePageToken(f *testing.F) {
	f.Add(PageToken("2026-12-01T06:00:00Z", "0b9c1c52-0f1e-4d6e-9a83-0f5c1f5b8c0e"), 2, "a", "b\x00c")
	f.Add("", 1, "", "")
	f.Add("not base64!", 2, "x", "y")
	f.Add(PageToken("only"), 3, "42", "")
	f.Fuzz(func(t *testing.T, tok string, n int, a, b string) {
		n = 1 + (n%4+4)%4
		parts, err := ParsePageToken(tok, n)
		if err != nil {
			var de *domainerr.Error
			if !errors.As(err, &de) || de.Kind != domainerr.InvalidArgument || de.Field != "page_token" {
				t.Fatalf("ParsePageToken(%q, %d) = %v, want INVALID_ARGUMENT on page_token", tok, n, err)
			}
		} else if tok != "" && len(parts) != n {
			t.Fatalf("ParsePageToken(%q, %d) = %d parts", tok, n, len(parts))
		}
		if strings.Contains(a, pageTokenSep) {
			return // only the last part may hold the separator
		}
		got, err := ParsePageToken(PageToken(a, b), 2)
		if err != nil || !slices.Equal(got, []string{a, b}) {
			t.Fatalf("PageToken(%q, %q) reads back as %q, %v", a, b, got, err)
		}
	})
}
