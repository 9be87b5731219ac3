package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// lessonFields are the fields PATCH /v1/lessons/{lesson_id} may change, by
// their JSON names (the same as their proto names).
var lessonFields = []string{"name", "objective", "priority", "metadata"}

// PresentFieldsMask gives PATCH /v1/lessons/{lesson_id} the semantics a REST
// client expects: without an update_mask it changes the fields present in
// the body, not every field. Over gRPC an empty mask means every field,
// which over REST wiped each field the body left out. A body naming none of
// the fields, and no mask, is refused with 400, since it could only mean
// either nothing or everything.
func PresentFieldsMask(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPatch || !isLessonPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// Too large, or cut: the decoder reports it as it would have.
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			next.ServeHTTP(w, r)
			return
		}
		fields := map[string]json.RawMessage{}
		if json.Unmarshal(body, &fields) == nil && noMask(fields["update_mask"]) && noMask(fields["updateMask"]) {
			delete(fields, "update_mask")
			delete(fields, "updateMask")
			var paths []string
			for _, f := range lessonFields {
				if _, ok := fields[f]; ok {
					paths = append(paths, f)
				}
			}
			if len(paths) == 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":{"code":3,"message":"invalid update_mask: the body names none of `+strings.Join(lessonFields, ", ")+`; send the fields to change, or update_mask","details":[]}}`+"\n")
				return
			}
			sort.Strings(paths)
			fields["update_mask"] = json.RawMessage(strconv.Quote(strings.Join(paths, ",")))
			body, _ = json.Marshal(fields)
		}
		r.Body = NewBody(body)
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		next.ServeHTTP(w, r)
	})
}

// noMask says whether an update_mask value leaves the mask unset: absent,
// null or "" (as a generated client may send for an unset field).
func noMask(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "", "null", `""`:
		return true
	}
	return false
}

// isLessonPath says whether path is /v1/lessons/{lesson_id}.
func isLessonPath(path string) bool {
	id, ok := strings.CutPrefix(path, "/v1/lessons/")
	return ok && id != "" && !strings.Contains(id, "/")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
