package service

import (
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"
)

// validRequestText answers 400 to a REST request whose path or query string
// is not valid UTF-8 once unescaped (…?label_selector=%ff%fe). grpc-gateway
// would copy such bytes into a proto string field, which the gRPC client then
// refuses to marshal: the client got 500 with that internal error's text.
// The check names the parameter and says nothing of the gateway's insides.
func validRequestText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !utf8.ValidString(r.URL.Path) {
			writeError(w, http.StatusBadRequest, 3, "invalid path: must be valid UTF-8 once percent-decoded")
			return
		}
		// A query string that does not parse is grpc-gateway's to refuse (400);
		// ParseQuery still returns the pairs it could read.
		q, _ := url.ParseQuery(r.URL.RawQuery)
		for name, values := range q {
			if !utf8.ValidString(name) {
				writeError(w, http.StatusBadRequest, 3, "invalid query string: a parameter name is not valid UTF-8 once percent-decoded")
				return
			}
			for _, v := range values {
				if !utf8.ValidString(v) {
					writeError(w, http.StatusBadRequest, 3, fmt.Sprintf("invalid %s: must be valid UTF-8 once percent-decoded", name))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
