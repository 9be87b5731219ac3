package reqfield

import (
	"encoding/base64"
	"strings"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// pageTokenSep separates the parts of a page token. No part but the last may
// hold it; the last may, since decoding splits into a known number of parts.
const pageTokenSep = "\x00"

// PageToken encodes where a listing stopped, the sort key of the last item
// it returned, as an opaque next_page_token.
func PageToken(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, pageTokenSep)))
}

// ParsePageToken decodes a page_token that PageToken made of n parts. An
// empty token is the first page: nil parts and no error. A token of another
// shape is INVALID_ARGUMENT on page_token.
func ParsePageToken(tok string, n int) ([]string, error) {
	if tok == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, BadPageToken()
	}
	parts := strings.SplitN(string(raw), pageTokenSep, n)
	if len(parts) != n {
		return nil, BadPageToken()
	}
	return parts, nil
}

// BadPageToken is the error for a page_token whose parts decode but make no
// sense to the service (a time that does not parse, an id of the wrong form).
func BadPageToken() error {
	return domainerr.Invalid("page_token", "is not a token this service issued")
}
