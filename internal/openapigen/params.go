package openapigen

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
)

// Paths and query parameters: how a gateway rule's template and request
// fields become OpenAPI parameters.

// pathField is a variable of a path template: the request field it fills and
// the name the OpenAPI path gives it.
type pathField struct {
	fieldPath string
	param     string
}

// openAPIPath turns a grpc-gateway path template into an OpenAPI path. A
// variable bound to a nested field ({settings.classroom_id}) is named by its
// last element, so that templates for the same resource stay one path.
func openAPIPath(tmpl string) (string, []pathField, error) {
	var fields []pathField
	var err error
	path := pathVar.ReplaceAllStringFunc(tmpl, func(v string) string {
		inner := strings.Trim(v, "{}")
		fp, pattern, hasPattern := strings.Cut(inner, "=")
		if hasPattern && pattern != "*" {
			err = fmt.Errorf("path variable %s: only single-segment variables are supported", v)
		}
		name := fp[strings.LastIndex(fp, ".")+1:]
		fields = append(fields, pathField{fieldPath: fp, param: name})
		return "{" + name + "}"
	})
	return path, fields, err
}

func fieldByPath(m *protogen.Message, path string) (*protogen.Field, error) {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		var found *protogen.Field
		for _, f := range m.Fields {
			if string(f.Desc.Name()) == p {
				found = f
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%s has no field %s", m.Desc.FullName(), p)
		}
		if i == len(parts)-1 {
			return found, nil
		}
		if found.Message == nil {
			return nil, fmt.Errorf("%s.%s is not a message", m.Desc.FullName(), p)
		}
		m = found.Message
	}
	return nil, fmt.Errorf("empty field path")
}

// maskTarget is the message that a field mask in the query string names
// fields of: the one the request body carries (body: "settings"), with the
// prefix under which its fields are bound to the path.
type maskTarget struct {
	msg    *protogen.Message
	prefix string
}

// queryParams lists the request fields a GET (or a body-less method) takes in
// the query string, as grpc-gateway parses it: scalars, enums and repeated
// ones (the parameter repeated), nested messages with dotted names. Maps are
// left out: grpc-gateway's `labels[key]=value` form is not something a
// generated client can produce, so the API offers a string selector instead.
// A FieldMask is described against mask (nil when the body is not one
// message field).
func (b *builder) queryParams(m *protogen.Message, prefix string, skip map[string]bool, mask *maskTarget) []any {
	var params []any
	for _, f := range m.Fields {
		name := prefix + string(f.Desc.Name())
		if skip[name] || f.Desc.IsMap() {
			continue
		}
		if f.Message != nil && !f.Desc.IsList() && !scalarLike(f.Message) {
			params = append(params, b.queryParams(f.Message, name+".", skip, mask)...)
			continue
		}
		if f.Message != nil && f.Desc.IsList() {
			b.fail(fmt.Errorf("%s: a repeated message cannot be a query parameter", f.Desc.FullName()))
			continue
		}
		if f.Message != nil && f.Message.Desc.FullName() == "google.protobuf.FieldMask" {
			s := fieldMaskQuerySchema(mask, skip)
			params = append(params, map[string]any{"name": name, "in": "query", "schema": s,
				"description": strings.TrimSpace(b.fieldDescription(f) + "\n\n" + s["description"].(string))})
			continue
		}
		s := b.valueSchema(f)
		p := map[string]any{"name": name, "in": "query", "description": b.fieldDescription(f)}
		if f.Desc.IsList() {
			p["schema"] = map[string]any{"type": "array", "items": s}
			p["style"] = "form"
			p["explode"] = true
			p["description"] = p["description"].(string) + " Repeat the parameter for several values."
		} else {
			p["schema"] = s
		}
		params = append(params, p)
	}
	return params
}

// scalarLike reports whether a message type travels as a single JSON value.
func scalarLike(m *protogen.Message) bool {
	switch m.Desc.FullName() {
	case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask":
		return true
	}
	return false
}

// fieldMaskQuerySchema describes a google.protobuf.FieldMask in the query
// string, which is not protobuf's JSON form of one (lowerCamelCase, as in a
// JSON body): grpc-gateway splits the value on commas and hands each path to
// the server unchanged, and the server matches proto field names. The example
// names fields of the target message, preferring names with an underscore,
// where the two spellings differ.
func fieldMaskQuerySchema(mask *maskTarget, skip map[string]bool) map[string]any {
	var top, nested, child *protogen.Field // top_level,nested.child
	if mask != nil {
		for _, f := range mask.msg.Fields {
			if skip[mask.prefix+string(f.Desc.Name())] {
				continue
			}
			composite := f.Message != nil && !scalarLike(f.Message) && !f.Desc.IsList() && !f.Desc.IsMap() &&
				!strings.HasPrefix(string(f.Message.Desc.FullName()), "google.protobuf.")
			switch {
			case composite && nested == nil && len(f.Message.Fields) > 0:
				nested, child = f, preferUnderscore(f.Message.Fields)
			case f.Message == nil && !f.Desc.IsMap() && (top == nil || !hasUnderscore(top) && hasUnderscore(f)):
				top = f
			}
		}
	}
	desc := "Comma-separated field paths, each field named exactly as the JSON body names it (the proto name, snake_case"
	var example []string
	if top != nil {
		desc += fmt.Sprintf(", such as `%s`", top.Desc.Name())
		example = append(example, string(top.Desc.Name()))
	}
	desc += "); a nested field is its parent's name, a dot and its own name"
	if nested != nil {
		path := string(nested.Desc.Name()) + "." + string(child.Desc.Name())
		desc += fmt.Sprintf(" (`%s`)", path)
		example = append(example, path)
	} else {
		desc += " (`parent.child`)"
	}
	desc += ". In the query string the paths reach the server as they are written, so lowerCamelCase"
	if top != nil && top.Desc.JSONName() != string(top.Desc.Name()) {
		desc += fmt.Sprintf(" (`%s`)", top.Desc.JSONName())
	}
	desc += ", protobuf's JSON form of a FieldMask, is refused."
	s := map[string]any{"type": "string", "description": desc}
	if len(example) > 0 {
		s["example"] = strings.Join(example, ",")
	}
	return s
}

func hasUnderscore(f *protogen.Field) bool { return strings.Contains(string(f.Desc.Name()), "_") }

func preferUnderscore(fields []*protogen.Field) *protogen.Field {
	for _, f := range fields {
		if hasUnderscore(f) {
			return f
		}
	}
	return fields[0]
}
