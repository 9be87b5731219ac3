package proto_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gaia-platform/gaia/internal/auth"
	gaiaproto "github.com/gaia-platform/gaia/proto"
)

func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gaiaproto.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPIDocumentValidates checks the published document with
// kin-openapi, the validator the end-to-end tests check the wire with.
func TestOpenAPIDocumentValidates(t *testing.T) {
	doc := loadDocument(t)
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
}

type operation struct {
	method, path string
	op           *openapi3.Operation
}

func operations(doc *openapi3.T) []operation {
	var ops []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, operation{method, path, op})
		}
	}
	return ops
}

func find(t *testing.T, doc *openapi3.T, id string) operation {
	t.Helper()
	for _, o := range operations(doc) {
		if o.op.OperationID == id {
			return o
		}
	}
	t.Fatalf("no operation %s", id)
	return operation{}
}

// Item 1: unset fields are omitted, never null, and the schemas say so: no
// property is nullable but JsonValue, and answers require exactly the fields
// the marshaler always writes.
func TestOpenAPIUnsetFieldsAreOptionalNotNull(t *testing.T) {
	doc := loadDocument(t)
	for name, ref := range doc.Components.Schemas {
		if ref.Value.Nullable && name != "JsonValue" {
			t.Errorf("schema %s is nullable; only JsonValue may be", name)
		}
		for prop, p := range ref.Value.Properties {
			if p.Value.Nullable {
				t.Errorf("%s.%s is nullable; unset fields are omitted, not null", name, prop)
			}
		}
	}
	task := doc.Components.Schemas["Task"].Value
	required := map[string]bool{}
	for _, r := range task.Required {
		required[r] = true
	}
	for _, always := range []string{"task_id", "state", "priority", "attempt"} {
		if !required[always] {
			t.Errorf("Task.%s is always written but not required", always)
		}
	}
	for _, unset := range []string{"claim_expires_at", "finished_at", "result"} {
		if required[unset] {
			t.Errorf("Task.%s is a message field, omitted when unset, but required", unset)
		}
	}
	if req := doc.Components.Schemas["EnqueueTaskRequest"].Value.Required; len(req) != 0 {
		t.Errorf("EnqueueTaskRequest requires %v; request fields are all optional on the wire", req)
	}
}

// Item 2: google.protobuf.Struct is a JSON object with any properties.
func TestOpenAPIStructIsAnObjectWithAdditionalProperties(t *testing.T) {
	doc := loadDocument(t)
	obj := doc.Components.Schemas["JsonObject"].Value
	if !obj.Type.Is("object") || obj.AdditionalProperties.Schema == nil {
		t.Fatalf("JsonObject = %+v, want an object with additionalProperties", obj)
	}
	if err := obj.VisitJSON(map[string]any{"i": 1.0, "s": "x", "n": nil, "l": []any{true}}); err != nil {
		t.Errorf("JsonObject refuses a free-form payload: %v", err)
	}
	payload := doc.Components.Schemas["EnqueueTaskRequest"].Value.Properties["payload"].Value
	if len(payload.AllOf) != 1 || payload.AllOf[0].Ref != "#/components/schemas/JsonObject" {
		t.Errorf("EnqueueTaskRequest.payload is not a JsonObject: %+v", payload)
	}
}

var streamRoutes = []string{"Heartbeat", "WatchSessions", "WatchFrustrationEvents", "SubscribeAlerts"}

// Items 3 and 4: streams are NDJSON with an item schema that is either a
// result or the very ErrorResponse unary calls answer with.
func TestOpenAPIStreamsAreNDJSONWithTheUnaryErrorShape(t *testing.T) {
	doc := loadDocument(t)
	unaryErr := find(t, doc, "GetTask").op.Responses.Value("404").Value.Content.Get("application/json").Schema.Ref
	if unaryErr != "#/components/schemas/ErrorResponse" {
		t.Fatalf("GetTask 404 schema = %s, want ErrorResponse", unaryErr)
	}
	for _, id := range streamRoutes {
		o := find(t, doc, id)
		mt := o.op.Responses.Status(200).Value.Content.Get("application/x-ndjson")
		if mt == nil {
			t.Errorf("%s: 200 is not application/x-ndjson", id)
			continue
		}
		item := mt.Schema.Value
		if len(item.OneOf) != 2 || item.OneOf[1].Ref != unaryErr {
			t.Errorf("%s: stream item is not result | ErrorResponse: %+v", id, item.OneOf)
		}
		if err := item.VisitJSON(map[string]any{"error": map[string]any{"code": 16.0, "message": "session token does not match", "details": []any{}}}); err != nil {
			t.Errorf("%s: an error line does not match the item schema: %v", id, err)
		}
		if o.op.Responses.Status(401) == nil && o.op.Responses.Status(400) == nil {
			t.Errorf("%s: no 4xx documented for errors before the first result", id)
		}
	}
	if find(t, doc, "Heartbeat").op.RequestBody.Value.Content.Get("application/x-ndjson") == nil {
		t.Errorf("Heartbeat's request stream is not application/x-ndjson")
	}
}

// Item 5: a bearer security scheme, and every operation says whether it needs it.
func TestOpenAPISecuritySchemes(t *testing.T) {
	doc := loadDocument(t)
	s := doc.Components.SecuritySchemes["bearerAuth"]
	if s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Fatalf("no bearerAuth http bearer scheme: %+v", s)
	}
	for _, o := range operations(doc) {
		if o.op.Security == nil {
			t.Errorf("%s %s: security not stated", o.method, o.path)
			continue
		}
		if len(*o.op.Security) > 0 {
			if o.op.Responses.Status(401) == nil || o.op.Extensions["x-gaia-roles"] == nil {
				t.Errorf("%s %s: needs a credential but documents no 401 or no roles", o.method, o.path)
			}
		}
	}
	if sec := find(t, doc, "AddVoter").op.Security; sec == nil || len(*sec) == 0 {
		t.Errorf("AddVoter needs the admin credential but documents no security")
	}
}

// Item 6: no map-shaped query parameter; sessions filter by a label selector.
func TestOpenAPIQueryParametersAreUsable(t *testing.T) {
	doc := loadDocument(t)
	for _, o := range operations(doc) {
		for _, p := range o.op.Parameters {
			if strings.ContainsAny(p.Value.Name, "[]") {
				t.Errorf("%s %s: parameter %q cannot be named by a client", o.method, o.path, p.Value.Name)
			}
		}
	}
	if find(t, doc, "ListSessions").op.Parameters.GetByInAndName("query", "label_selector") == nil {
		t.Errorf("ListSessions has no label_selector parameter")
	}
}

// Item 7: durations and timestamps say their format, with a pattern and an
// example that the pattern accepts.
func TestOpenAPIDurationAndTimestampFormats(t *testing.T) {
	doc := loadDocument(t)
	for name, cases := range map[string][2]string{
		"Duration":  {"45s", "PT45S"},
		"Timestamp": {"2026-03-02T09:30:00.123Z", "2026-03-02 09:30"},
	} {
		good, bad := cases[0], cases[1]
		s := doc.Components.Schemas[name].Value
		if s.Pattern == "" || s.Example == nil || s.Format == "" || s.Description == "" {
			t.Errorf("%s lacks a format, pattern, example or description: %+v", name, s)
			continue
		}
		re := regexp.MustCompile(s.Pattern)
		if !re.MatchString(good) || !re.MatchString(fmt.Sprint(s.Example)) || re.MatchString(bad) {
			t.Errorf("%s pattern %s: want %q and the example accepted, %q refused", name, s.Pattern, good, bad)
		}
	}
	if d := doc.Components.Schemas["Duration"].Value.Description; !strings.Contains(d, "45s") || !strings.Contains(d, "PT45S") {
		t.Errorf("Duration description does not show 45s nor warn about PT45S: %q", d)
	}
}

// Item 8: no two path templates that differ only in variable names, and no
// dotted variable names.
func TestOpenAPINoDuplicatePathTemplates(t *testing.T) {
	doc := loadDocument(t)
	shapes := map[string]string{}
	vars := regexp.MustCompile(`\{[^}]*\}`)
	for path := range doc.Paths.Map() {
		shape := vars.ReplaceAllString(path, "{}")
		if prev, dup := shapes[shape]; dup {
			t.Errorf("duplicate path templates %s and %s", prev, path)
		}
		shapes[shape] = path
		if strings.Contains(strings.Join(vars.FindAllString(path, -1), ""), ".") {
			t.Errorf("path %s has a dotted variable", path)
		}
	}
}

// Item 9: clean unique operation ids, a tag per service, a real title, explicit
// error statuses (no bare default) and a description on every operation,
// parameter and property.
func TestOpenAPIIsCleanForGenerators(t *testing.T) {
	doc := loadDocument(t)
	if doc.Info.Title != "GAIA API" || doc.Info.Version == "" || doc.Info.Version == "version not set" {
		t.Errorf("info = %q %q", doc.Info.Title, doc.Info.Version)
	}
	if len(doc.Servers) == 0 {
		t.Errorf("no servers")
	}
	clean := regexp.MustCompile(`^[A-Z][a-zA-Z]+$`)
	ids := map[string]bool{}
	tags := map[string]bool{}
	for _, tag := range doc.Tags {
		tags[tag.Name] = true
	}
	for _, o := range operations(doc) {
		where := o.method + " " + o.path
		id := o.op.OperationID
		if !clean.MatchString(id) || strings.Contains(id, "Service") || ids[id] {
			t.Errorf("%s: operationId %q is not clean and unique", where, id)
		}
		ids[id] = true
		if len(o.op.Tags) != 1 || !tags[o.op.Tags[0]] {
			t.Errorf("%s: tags %v, want one declared tag", where, o.op.Tags)
		}
		if o.op.Description == "" || o.op.Summary == "" {
			t.Errorf("%s: no summary or description", where)
		}
		if o.op.Responses.Default() != nil {
			t.Errorf("%s: documents a default response instead of its statuses", where)
		}
		var has4xx, has5xx bool
		for code := range o.op.Responses.Map() {
			has4xx = has4xx || code[0] == '4'
			has5xx = has5xx || code[0] == '5'
		}
		if !has4xx || !has5xx {
			t.Errorf("%s: responses %v lack 4xx or 5xx", where, o.op.Responses.Map())
		}
		for _, p := range o.op.Parameters {
			if p.Value.Description == "" {
				t.Errorf("%s: parameter %s has no description", where, p.Value.Name)
			}
		}
	}
	if len(ids) < 54 {
		t.Errorf("%d operations, want every REST route (at least 54)", len(ids))
	}
	for name, ref := range doc.Components.Schemas {
		if ref.Value.Description == "" {
			t.Errorf("schema %s has no description", name)
		}
		for prop, p := range ref.Value.Properties {
			if p.Value.Description == "" {
				t.Errorf("%s.%s has no description", name, prop)
			}
		}
	}
}

// The document's security is the policy table's (internal/auth), operation by
// operation: a committed document that drifted from enforcement fails here.
func TestOpenAPISecurityMatchesThePolicyTable(t *testing.T) {
	doc := loadDocument(t)
	for _, o := range operations(doc) {
		rpc, _ := o.op.Extensions["x-gaia-rpc"].(string)
		pol, ok := auth.Lookup(rpc)
		if !ok {
			t.Errorf("%s %s: RPC %q has no policy", o.method, o.path, rpc)
			continue
		}
		var want []string
		for _, r := range pol.Roles {
			want = append(want, string(r))
		}
		var got []string
		if roles, ok := o.op.Extensions["x-gaia-roles"].([]any); ok {
			for _, r := range roles {
				got = append(got, fmt.Sprint(r))
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: x-gaia-roles %v, policy table %v", rpc, got, want)
		}
		anonymous := false
		for _, req := range *o.op.Security {
			anonymous = anonymous || len(req) == 0
		}
		if anonymous != (pol.Public || pol.Allows(auth.RoleSession)) || len(*o.op.Security) == 0 != pol.Public {
			t.Errorf("%s: security %v does not say what the policy %+v enforces", rpc, *o.op.Security, pol)
		}
	}
}

// A FieldMask in the query string reaches the server as written (grpc-gateway
// splits it on commas and nothing more), and the server matches proto names:
// UpdateDetectionSettings' update_mask was documented with the JSON
// FieldMask's lowerCamelCase and the example `name,objective`, which the
// server refuses. Query FieldMasks now say snake_case, and their example's
// paths are fields of the request body's schema, spelled as the body spells
// them.
func TestOpenAPIFieldMaskQueryParametersSaySnakeCase(t *testing.T) {
	doc := loadDocument(t)
	checked := 0
	for _, o := range operations(doc) {
		for _, pr := range o.op.Parameters {
			p := pr.Value
			if p.In != "query" || !strings.HasSuffix(p.Name, "_mask") {
				continue
			}
			checked++
			what := o.op.OperationID + " " + p.Name
			s := p.Schema.Value
			for _, d := range []string{p.Description, s.Description} {
				if strings.Contains(d, "lowerCamelCase, such as") || !strings.Contains(d, "snake_case") {
					t.Errorf("%s: description %q, want snake_case paths, lowerCamelCase refused", what, d)
				}
			}
			example, _ := s.Example.(string)
			if example == "" || o.op.RequestBody == nil {
				t.Errorf("%s: example %q (a body: %v), want paths of the body's fields", what, example, o.op.RequestBody != nil)
				continue
			}
			body := o.op.RequestBody.Value.Content.Get("application/json").Schema.Value
			for _, path := range strings.Split(example, ",") {
				at := body
				for _, name := range strings.Split(path, ".") {
					next := at.Properties[name]
					if next == nil {
						t.Errorf("%s: example path %q: the body has no property %q", what, path, name)
						break
					}
					at = next.Value
					if len(at.AllOf) == 1 { // a $ref with its own description
						at = at.AllOf[0].Value
					}
				}
			}
			if !strings.Contains(example, "_") || !strings.Contains(example, ".") {
				t.Errorf("%s: example %q, want a snake_case name and a nested path", what, example)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no FieldMask query parameter; UpdateDetectionSettings has one")
	}
}

// The stream note told every stream's reader to "reconnect with the
// resumption parameter", Heartbeat's too, which has none. Each stream names
// its own (an after_… query parameter) or says there is nothing to resume.
func TestOpenAPIStreamsNameTheirResumptionParameter(t *testing.T) {
	doc := loadDocument(t)
	for _, id := range streamRoutes {
		o := find(t, doc, id)
		var after string
		for _, p := range o.op.Parameters {
			if strings.HasPrefix(p.Value.Name, "after_") {
				after = p.Value.Name
			}
		}
		d := o.op.Description
		switch {
		case strings.Contains(d, "the resumption parameter"):
			t.Errorf("%s: description speaks of \"the resumption parameter\" without naming it", id)
		case after != "" && !strings.Contains(d, "reconnect with `"+after+"`"):
			t.Errorf("%s: description does not say to reconnect with `%s`", id, after)
		case after == "" && !strings.Contains(d, "nothing to resume"):
			t.Errorf("%s: no after_ parameter, and the description does not say there is nothing to resume", id)
		}
	}
}
