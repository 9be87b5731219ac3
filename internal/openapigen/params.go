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

// queryParams lists the request fields a GET (or a body-less method) takes in
// the query string, as grpc-gateway parses it: scalars, enums and repeated
// ones (the parameter repeated), nested messages with dotted names. Maps are
// left out: grpc-gateway's `labels[key]=value` form is not something a
// generated client can produce, so the API offers a string selector instead.
func (b *builder) queryParams(m *protogen.Message, prefix string, skip map[string]bool) []any {
	var params []any
	for _, f := range m.Fields {
		name := prefix + string(f.Desc.Name())
		if skip[name] || f.Desc.IsMap() {
			continue
		}
		if f.Message != nil && !f.Desc.IsList() && !scalarLike(f.Message) {
			params = append(params, b.queryParams(f.Message, name+".", skip)...)
			continue
		}
		if f.Message != nil && f.Desc.IsList() {
			b.fail(fmt.Errorf("%s: a repeated message cannot be a query parameter", f.Desc.FullName()))
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
