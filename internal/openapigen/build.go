// Package openapigen builds GAIA's published OpenAPI 3 document from the
// protos (their comments included), the gateway's HTTP rules
// (proto/gateway.yaml), the document overlay (proto/openapi.yaml) and the
// authorization policy. It runs as the protoc plugin
// cmd/protoc-gen-gaia-openapi inside `make generate`; it owns the document's
// shape and nothing else.
package openapigen

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Security says who may call an RPC, as the authorization policy enforces it.
type Security struct {
	// Public RPCs need no bearer credential (they may authenticate otherwise,
	// such as an agent session's token in the request body).
	Public bool
	// Roles are the bearer credentials' roles allowed to call the RPC.
	Roles []string
	// SessionToken RPCs may also be called with no bearer credential by an
	// agent session, which authenticates with its token in the request.
	SessionToken bool
	// Note is extra prose for the operation's description, such as how an
	// agent session authenticates.
	Note string
}

// Options are the generator's inputs besides the proto files.
type Options struct {
	GatewayConfig string // path of proto/gateway.yaml
	Overlay       string // path of proto/openapi.yaml
	// Security returns the policy of an RPC by its full method name
	// ("/gaia.taskqueue.v1.TaskService/EnqueueTask").
	Security func(fullMethod string) (Security, error)
}

type builder struct {
	opts         Options
	ov           *overlay
	names        map[protoreflect.FullName]string
	msgs         map[protoreflect.FullName]*protogen.Message
	enums        map[protoreflect.FullName]*protogen.Enum
	responseOnly map[protoreflect.FullName]bool
	queue        []protoreflect.FullName
	queued       map[protoreflect.FullName]bool
	schemas      map[string]any
	undocumented []string
	errs         []error
}

func (b *builder) fail(err error) { b.errs = append(b.errs, err) }

func (b *builder) need(n protoreflect.FullName) {
	if !b.queued[n] {
		b.queued[n] = true
		b.queue = append(b.queue, n)
	}
}

// Build returns the OpenAPI 3.0 document of every RPC that has an HTTP rule, as
// indented JSON.
func Build(files []*protogen.File, opts Options) ([]byte, error) {
	rules, err := readRules(opts.GatewayConfig)
	if err != nil {
		return nil, err
	}
	ov, err := readOverlay(opts.Overlay)
	if err != nil {
		return nil, err
	}
	b := &builder{
		opts: opts, ov: ov, names: schemaNames(files),
		msgs: map[protoreflect.FullName]*protogen.Message{}, enums: map[protoreflect.FullName]*protogen.Enum{},
		queued: map[protoreflect.FullName]bool{}, schemas: map[string]any{},
	}
	var index func(ms []*protogen.Message, es []*protogen.Enum)
	index = func(ms []*protogen.Message, es []*protogen.Enum) {
		for _, e := range es {
			b.enums[e.Desc.FullName()] = e
		}
		for _, m := range ms {
			b.msgs[m.Desc.FullName()] = m
			index(m.Messages, m.Enums)
		}
	}
	for _, f := range files {
		index(f.Messages, f.Enums)
	}
	b.responseOnly = responseOnly(files)

	paths := newObject()
	var tags []any
	operationIDs := map[string]string{}
	templates := map[string]string{} // path with {} for every variable → path
	used := map[string]bool{}
	for _, f := range files {
		for _, svc := range f.Services {
			tag := strings.TrimSuffix(string(svc.Desc.Name()), "Service")
			tagged := false
			for _, m := range svc.Methods {
				rule, ok := rules[string(m.Desc.FullName())]
				if !ok {
					continue
				}
				used[string(m.Desc.FullName())] = true
				bindings := append([]httpRule{rule}, rule.AdditionalBindings...)
				for i, r := range bindings {
					if i > 0 {
						r.Selector = rule.Selector
					}
					verb, tmpl, err := r.verbPath()
					if err != nil {
						b.fail(err)
						continue
					}
					op, path, err := b.operation(m, r, verb, tmpl, i > 0, tag)
					if err != nil {
						b.fail(fmt.Errorf("%s %s: %w", strings.ToUpper(verb), tmpl, err))
						continue
					}
					id := op.vals["operationId"].(string)
					if prev, dup := operationIDs[id]; dup {
						b.fail(fmt.Errorf("operationId %s used by %s and %s %s", id, prev, strings.ToUpper(verb), tmpl))
					}
					operationIDs[id] = strings.ToUpper(verb) + " " + tmpl
					shape := pathVar.ReplaceAllString(path, "{}")
					if prev, ok := templates[shape]; ok && prev != path {
						b.fail(fmt.Errorf("path templates %s and %s differ only in variable names", prev, path))
					}
					templates[shape] = path
					item, ok := paths.get(path)
					if !ok {
						item = newObject()
						paths.set(path, item)
					}
					if _, dup := item.(*object).get(verb); dup {
						b.fail(fmt.Errorf("two operations for %s %s", strings.ToUpper(verb), path))
					}
					item.(*object).set(verb, op)
					tagged = true
				}
			}
			if tagged {
				tags = append(tags, map[string]any{"name": tag, "description": commentText(svc.Comments.Leading)})
			}
		}
	}
	for sel := range rules {
		if !used[sel] {
			b.fail(fmt.Errorf("gateway.yaml has a rule for %s, which no proto defines", sel))
		}
	}

	for len(b.queue) > 0 {
		n := b.queue[0]
		b.queue = b.queue[1:]
		if m, ok := b.msgs[n]; ok {
			b.schemas[b.names[n]] = b.messageSchema(m)
		} else if e, ok := b.enums[n]; ok {
			b.schemas[b.names[n]] = b.enumSchema(e)
		} else {
			b.fail(fmt.Errorf("type %s is not among the generated files", n))
		}
	}
	for name, s := range wellKnown() {
		b.schemas[name] = s
	}
	for name, s := range errorSchemas() {
		b.schemas[name] = s
	}
	if len(b.undocumented) > 0 {
		sort.Strings(b.undocumented)
		b.fail(fmt.Errorf("these have no comment to describe them in the document: %s", strings.Join(b.undocumented, ", ")))
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}

	var servers []any
	for _, s := range ov.Servers {
		servers = append(servers, map[string]any{"url": s.URL, "description": s.Description})
	}
	doc := newObject()
	doc.set("openapi", "3.0.3")
	doc.set("info", map[string]any{
		"title":       ov.Info.Title,
		"description": strings.TrimSpace(ov.Info.Description),
		"version":     ov.Info.Version,
	})
	doc.set("servers", servers)
	doc.set("tags", tags)
	doc.set("paths", paths)
	doc.set("components", map[string]any{
		"schemas":         b.schemas,
		"responses":       map[string]any{},
		"securitySchemes": securitySchemes(),
	})
	out, err := marshalJSON(doc)
	if err != nil {
		return nil, err
	}
	return indent(out)
}

var pathVar = regexp.MustCompile(`\{[^}]*\}`)

// responseOnly returns the messages that travel only in answers: reachable
// from an RPC's response and not from any request.
func responseOnly(files []*protogen.File) map[protoreflect.FullName]bool {
	in, out := map[protoreflect.FullName]bool{}, map[protoreflect.FullName]bool{}
	var walk func(m *protogen.Message, seen map[protoreflect.FullName]bool)
	walk = func(m *protogen.Message, seen map[protoreflect.FullName]bool) {
		if m == nil || seen[m.Desc.FullName()] {
			return
		}
		seen[m.Desc.FullName()] = true
		for _, f := range m.Fields {
			walk(f.Message, seen)
		}
	}
	for _, f := range files {
		for _, s := range f.Services {
			for _, m := range s.Methods {
				walk(m.Input, in)
				walk(m.Output, out)
			}
		}
	}
	only := map[protoreflect.FullName]bool{}
	for n := range out {
		if !in[n] {
			only[n] = true
		}
	}
	return only
}

func securitySchemes() map[string]any {
	return map[string]any{
		"bearerAuth": map[string]any{
			"type":   "http",
			"scheme": "bearer",
			"description": "A GAIA credential in the `Authorization: Bearer <token>` header. " +
				"Each operation lists the roles whose credentials it accepts (`x-gaia-roles`). " +
				"Agent sessions do not use it: they send their `session_token` (issued by RegisterSession) in the request.",
		},
	}
}

// operation builds the OpenAPI operation of one HTTP binding of an RPC and
// returns it with its OpenAPI path.
func (b *builder) operation(m *protogen.Method, r httpRule, verb, tmpl string, additional bool, tag string) (*object, string, error) {
	clientStream, serverStream := m.Desc.IsStreamingClient(), m.Desc.IsStreamingServer()
	path, pathFields, err := openAPIPath(tmpl)
	if err != nil {
		return nil, "", err
	}

	id := string(m.Desc.Name())
	if additional {
		key := strings.ToUpper(verb) + " " + tmpl
		if id = b.ov.OperationIDs[key]; id == "" {
			return nil, "", fmt.Errorf("an additional binding needs an operation id in openapi.yaml operation_ids[%q]", key)
		}
	}
	desc := commentText(m.Comments.Leading, m.Comments.Trailing)
	if desc == "" {
		b.undocumented = append(b.undocumented, string(m.Desc.FullName()))
	}
	fullMethod := fmt.Sprintf("/%s/%s", m.Parent.Desc.FullName(), m.Desc.Name())
	sec, err := b.opts.Security(fullMethod)
	if err != nil {
		return nil, "", err
	}
	if sec.Note != "" {
		desc += "\n\n" + sec.Note
	}
	if serverStream {
		desc += "\n\n" + streamNote(m)
	}

	op := newObject()
	op.set("operationId", id)
	op.set("tags", []string{tag})
	op.set("summary", summary(desc))
	op.set("description", desc)
	switch {
	case sec.Public:
		op.set("security", []any{})
	case sec.SessionToken:
		// Either no credential (an agent session's token in the body) or a bearer one.
		op.set("security", []any{map[string]any{}, map[string]any{"bearerAuth": []any{}}})
		op.set("x-gaia-roles", append([]string{"session"}, sec.Roles...))
	default:
		op.set("security", []any{map[string]any{"bearerAuth": []any{}}})
		op.set("x-gaia-roles", sec.Roles)
	}
	op.set("x-gaia-rpc", fullMethod)

	var params []any
	for _, pf := range pathFields {
		f, err := fieldByPath(m.Input, pf.fieldPath)
		if err != nil {
			return nil, "", err
		}
		s := b.valueSchema(f)
		params = append(params, map[string]any{
			"name": pf.param, "in": "path", "required": true,
			"description": b.fieldDescription(f), "schema": s,
		})
	}
	inPath := map[string]bool{}
	for _, pf := range pathFields {
		inPath[pf.fieldPath] = true
	}
	switch r.Body {
	case "":
		params = append(params, b.queryParams(m.Input, "", inPath, nil)...)
	case "*":
		props := newObject()
		for _, f := range m.Input.Fields {
			if !inPath[string(f.Desc.Name())] {
				props.set(string(f.Desc.Name()), b.fieldSchema(f))
			}
		}
		body := map[string]any{"type": "object", "properties": props,
			"description": commentText(m.Input.Comments.Leading)}
		if len(pathFields) == 0 {
			b.need(m.Input.Desc.FullName())
			body = ref(b.names[m.Input.Desc.FullName()])
		}
		mediaType := "application/json"
		bodyDesc := commentText(m.Input.Comments.Leading)
		if clientStream {
			mediaType = "application/x-ndjson"
			bodyDesc += "\n\nA stream: one JSON object per line (newline-delimited JSON), sent while the response streams back."
		}
		op.set("requestBody", map[string]any{
			"required":    true,
			"description": bodyDesc,
			"content":     map[string]any{mediaType: map[string]any{"schema": body}},
		})
	default:
		f, err := fieldByPath(m.Input, r.Body)
		if err != nil {
			return nil, "", err
		}
		op.set("requestBody", map[string]any{
			"required":    true,
			"description": b.fieldDescription(f),
			"content":     map[string]any{"application/json": map[string]any{"schema": b.valueSchema(f)}},
		})
		var mask *maskTarget
		if f.Message != nil && !f.Desc.IsList() {
			mask = &maskTarget{msg: f.Message, prefix: r.Body + "."}
		}
		params = append(params, b.queryParams(m.Input, "", mergeSet(inPath, r.Body), mask)...)
	}
	if len(params) > 0 {
		op.set("parameters", params)
	}

	responses := newObject()
	out := m.Output
	var result map[string]any
	if r.ResponseBody != "" {
		f, err := fieldByPath(out, r.ResponseBody)
		if err != nil {
			return nil, "", err
		}
		result = b.valueSchema(f)
	} else {
		b.need(out.Desc.FullName())
		result = ref(b.names[out.Desc.FullName()])
	}
	if serverStream {
		item := string(m.Desc.Name()) + "StreamItem"
		b.schemas[item] = map[string]any{
			"description": fmt.Sprintf("One line of the %s stream: either a result or, as the last line, the error that ended the stream (the same ErrorResponse that unary calls answer with).", m.Desc.Name()),
			"oneOf": []any{
				map[string]any{"type": "object", "required": []string{"result"}, "properties": map[string]any{"result": result},
					"description": "A message of the stream."},
				ref("ErrorResponse"),
			},
		}
		responses.set("200", map[string]any{
			"description": "A stream of newline-delimited JSON objects, one per line, flushed as they happen; " +
				"each is a `{\"result\": …}` or, last, an `{\"error\": …}`.",
			"content": map[string]any{"application/x-ndjson": map[string]any{"schema": ref(item)}},
		})
	} else {
		responses.set("200", map[string]any{
			"description": firstSentence(commentText(out.Comments.Leading)),
			"content":     map[string]any{"application/json": map[string]any{"schema": result}},
		})
	}
	_, hasBody := op.get("requestBody")
	for _, e := range b.errorResponses(string(m.Desc.FullName()), sec, hasBody) {
		responses.set(e.status, e.body)
	}
	op.set("responses", responses)
	return op, path, nil
}

func mergeSet(s map[string]bool, k string) map[string]bool {
	out := map[string]bool{k: true}
	for x := range s {
		out[x] = true
	}
	return out
}

func streamNote(m *protogen.Method) string {
	return fmt.Sprintf("**Streaming.** The answer is `application/x-ndjson`: one JSON object per line "+
		"(see %sStreamItem), each `{\"result\": …}`, flushed as it happens; when the stream fails, its last line is "+
		"`{\"error\": {\"code\": …, \"message\": …}}`, the same ErrorResponse as a unary call's. An error before the "+
		"first result is answered like a unary call's, with its HTTP status. In a browser, read it with `fetch` and "+
		"`response.body.pipeThrough(new TextDecoderStream())`, splitting on newlines (clients/typescript does this). "+
		"A stream stays open until the server or the client ends it", m.Desc.Name()) + resumptionNote(m)
}

// resumptionNote says how a client continues a stream that ended: by the
// request's after_… field when it has one.
func resumptionNote(m *protogen.Method) string {
	for _, f := range m.Input.Fields {
		if name := string(f.Desc.Name()); strings.HasPrefix(name, "after_") {
			return fmt.Sprintf("; reconnect with `%s` set from the last result read to continue where it stopped.", name)
		}
	}
	if m.Desc.IsStreamingClient() {
		return "; there is nothing to resume: each request line stands on its own, so a client whose stream " +
			"broke opens a new one and goes on sending."
	}
	return "; there is nothing to resume: a new request starts afresh."
}

func summary(desc string) string {
	s := firstSentence(desc)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func firstSentence(s string) string {
	s = strings.SplitN(s, "\n", 2)[0]
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return s
}
