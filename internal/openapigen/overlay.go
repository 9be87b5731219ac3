package openapigen

import (
	"fmt"
	"os"

	"google.golang.org/grpc/codes"
	"sigs.k8s.io/yaml"
)

// overlay is what the document says that the protos and the HTTP rules cannot:
// the document's own description, servers, the names of additional bindings,
// and which errors each RPC answers with (proto/openapi.yaml).
type overlay struct {
	Info struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		// Version is the placeholder committed in the tree; the gateway
		// replaces it with its build's version when it serves the document.
		Version string `json:"version"`
	} `json:"info"`
	Servers []struct {
		URL         string `json:"url"`
		Description string `json:"description"`
	} `json:"servers"`
	// OperationIDs names the operations of additional bindings, keyed by
	// "METHOD /path" as written in gateway.yaml.
	OperationIDs map[string]string `json:"operation_ids"`
	// Errors lists, per RPC full name, the gRPC codes beyond the common ones
	// (see commonErrors) that the RPC answers with, and when.
	Errors map[string]map[string]string `json:"errors"`
}

func readOverlay(path string) (*overlay, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var o overlay
	if err := yaml.UnmarshalStrict(raw, &o); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for rpc, errs := range o.Errors {
		for name := range errs {
			if _, ok := codeByName[name]; !ok {
				return nil, fmt.Errorf("%s: errors of %s: unknown gRPC code %q", path, rpc, name)
			}
		}
	}
	return &o, nil
}

// codeByName maps the canonical gRPC code names (as google.rpc.Code spells
// them) to codes.
var codeByName = func() map[string]codes.Code {
	m := map[string]codes.Code{}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		m[codeName(c)] = c
	}
	return m
}()

// codeName is the google.rpc.Code spelling of c, such as FAILED_PRECONDITION.
func codeName(c codes.Code) string {
	return map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
		codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
		codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
		codes.Unauthenticated: "UNAUTHENTICATED",
	}[c]
}
