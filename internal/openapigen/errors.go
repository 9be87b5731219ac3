package openapigen

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
)

// The error model: which statuses each operation documents and the shape of
// every error body.

type errorResponse struct {
	status string
	body   map[string]any
}

// commonErrors are the codes every RPC can answer with.
var commonErrors = map[codes.Code]string{
	codes.InvalidArgument: "the request is malformed or a field is invalid; the message names the field",
	codes.Internal:        "an unexpected server error (details are in the server's log)",
	codes.Unavailable:     "a backend is unreachable or has no Raft leader at the moment; retry with backoff",
}

// errorResponses lists the error statuses of an RPC: the common ones, the
// authorization ones its policy implies, and those openapi.yaml lists for it. Several gRPC
// codes share an HTTP status; the description says which, and when.
func (b *builder) errorResponses(rpc string, sec Security, hasBody bool) []errorResponse {
	when := map[codes.Code]string{}
	for c, w := range commonErrors {
		when[c] = w
	}
	if !sec.Public {
		when[codes.Unauthenticated] = "no credential, or one that is not valid (expired, revoked, badly signed)"
		when[codes.PermissionDenied] = "the credential's role or scope does not allow this call"
		when[codes.ResourceExhausted] = "the credential is over its rate limit (AUTH_RATE_LIMIT); retry later"
	}
	for name, w := range b.ov.Errors[rpc] {
		when[codeByName[name]] = w
	}
	byStatus := map[int][]codes.Code{}
	for c := range when {
		st := runtime.HTTPStatusFromCode(c)
		byStatus[st] = append(byStatus[st], c)
	}
	var statuses []int
	for st := range byStatus {
		statuses = append(statuses, st)
	}
	if hasBody {
		// The gateway refuses an oversized body itself (services/gateway/service.MaxBodyBytes).
		statuses = append(statuses, http.StatusRequestEntityTooLarge)
	}
	sort.Ints(statuses)
	var out []errorResponse
	for _, st := range statuses {
		if st == http.StatusRequestEntityTooLarge {
			out = append(out, errorResponse{status: "413", body: map[string]any{
				"description": "Request Entity Too Large. The body is larger than the gateway accepts (8 MiB); the error's `code` is `INVALID_ARGUMENT` (3). Send smaller batches.",
				"content":     map[string]any{"application/json": map[string]any{"schema": ref("ErrorResponse")}},
			}})
			continue
		}
		cs := byStatus[st]
		sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
		var lines []string
		for _, c := range cs {
			lines = append(lines, fmt.Sprintf("- `%s` (%d): %s", codeName(c), c, when[c]))
		}
		out = append(out, errorResponse{
			status: fmt.Sprint(st),
			body: map[string]any{
				"description": http.StatusText(st) + ". The error's `code` is one of:\n" + strings.Join(lines, "\n"),
				"content":     map[string]any{"application/json": map[string]any{"schema": ref("ErrorResponse")}},
			},
		})
	}
	return out
}

func errorSchemas() map[string]map[string]any {
	return map[string]map[string]any{
		"ErrorResponse": {
			"type":        "object",
			"required":    []string{"error"},
			"properties":  map[string]any{"error": ref("Status")},
			"description": "Every error, of a unary call or as the last line of a stream, has this shape.",
		},
		"Status": {
			"type":     "object",
			"required": []string{"code", "message", "details"},
			"properties": map[string]any{
				"code": map[string]any{"type": "integer", "format": "int32", "minimum": 1, "maximum": 16,
					"description": "The gRPC status code (google.rpc.Code), such as 3 for INVALID_ARGUMENT or 16 for UNAUTHENTICATED."},
				"message": map[string]any{"type": "string",
					"description": "What went wrong, in English; for INVALID_ARGUMENT it names the field."},
				"details": map[string]any{"type": "array", "items": ref("Any"),
					"description": "Machine-readable details (google.rpc error details), possibly empty."},
			},
			"description": "A google.rpc.Status: the gRPC code and message of a failed call.",
		},
		"Any": {
			"type":                 "object",
			"required":             []string{"@type"},
			"properties":           map[string]any{"@type": map[string]any{"type": "string", "description": "The type URL of the detail, such as `type.googleapis.com/google.rpc.BadRequest`."}},
			"additionalProperties": map[string]any{},
			"description":          "A google.protobuf.Any: a typed message with its type URL in `@type` and its fields beside it.",
		},
	}
}
