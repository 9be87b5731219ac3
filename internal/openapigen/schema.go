package openapigen

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The schemas below describe exactly what the gateway's marshaler writes
// (protojson with proto field names and EmitDefaultValues, see
// services/gateway/internal/rest): scalars, enums, lists and maps are always
// present, an unset message field is omitted (never null), 64-bit integers are
// decimal strings, enums travel by name, and the well-known types use their
// protojson forms.

const (
	refPrefix = "#/components/schemas/"

	timestampPattern = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`
	durationPattern  = `^-?[0-9]+(\.[0-9]{1,9})?s$`
	int64Pattern     = `^-?[0-9]+$`
	uint64Pattern    = `^[0-9]+$`
)

// wellKnown are the component schemas of the google.protobuf types GAIA's API
// uses, in their protojson forms.
func wellKnown() map[string]map[string]any {
	return map[string]map[string]any{
		"Timestamp": {
			"type":        "string",
			"format":      "date-time",
			"pattern":     timestampPattern,
			"example":     "2026-03-02T09:30:00Z",
			"description": "An instant as an RFC 3339 date-time. Answers are in UTC with a `Z` and 0, 3, 6 or 9 fractional digits; requests may use any offset.",
		},
		"Duration": {
			"type":    "string",
			"format":  "duration-seconds",
			"pattern": durationPattern,
			"example": "45s",
			"description": "A duration as decimal seconds with an `s` suffix and up to 9 fractional digits, " +
				"such as `45s`, `1.5s` or `0.250s` (protobuf's JSON form of google.protobuf.Duration). " +
				"ISO 8601 durations such as `PT45S` and Go durations such as `1m30s` are refused with INVALID_ARGUMENT.",
		},
		"JsonObject": {
			"type":                 "object",
			"additionalProperties": ref("JsonValue"),
			"example":              map[string]any{"step": 3, "files": []any{"src/app.go"}},
			"description":          "Any JSON object (google.protobuf.Struct). Values may be any JSON value, including null.",
		},
		"JsonValue": {
			"nullable":    true,
			"description": "Any JSON value: object, array, string, number, boolean or null (google.protobuf.Value).",
		},
	}
}

// schemaNames gives every message and enum of the API a component name: its
// nested name without dots (Task, ClaimTasksRequest, DetectionSettingsThresholds),
// qualified with its context only when two packages use the same name.
func schemaNames(files []*protogen.File) map[protoreflect.FullName]string {
	type entry struct {
		full   protoreflect.FullName
		simple string
		pkg    protoreflect.FullName
	}
	var all []entry
	var walkMsgs func(ms []*protogen.Message, enums []*protogen.Enum, pkg protoreflect.FullName)
	walkMsgs = func(ms []*protogen.Message, enums []*protogen.Enum, pkg protoreflect.FullName) {
		for _, e := range enums {
			all = append(all, entry{e.Desc.FullName(), nestedName(e.Desc.FullName(), pkg), pkg})
		}
		for _, m := range ms {
			if m.Desc.IsMapEntry() {
				continue
			}
			all = append(all, entry{m.Desc.FullName(), nestedName(m.Desc.FullName(), pkg), pkg})
			walkMsgs(m.Messages, m.Enums, pkg)
		}
	}
	for _, f := range files {
		walkMsgs(f.Messages, f.Enums, f.Desc.Package())
	}
	count := map[string]int{}
	for _, e := range all {
		count[e.simple]++
	}
	names := map[protoreflect.FullName]string{}
	for _, e := range all {
		n := e.simple
		if count[n] > 1 || wellKnown()[n] != nil {
			// gaia.coordinator.v1 → Coordinator
			parts := strings.Split(string(e.pkg), ".")
			ctx := parts[len(parts)-2]
			n = strings.ToUpper(ctx[:1]) + ctx[1:] + n
		}
		names[e.full] = n
	}
	return names
}

// nestedName is a message's or enum's name within its package, without dots.
// An RPC's answer (GetTaskResponse) is published as GetTaskResult: generators
// such as oapi-codegen name their own per-operation wrapper <OperationId>Response,
// which would collide with the schema.
func nestedName(full, pkg protoreflect.FullName) string {
	n := strings.ReplaceAll(strings.TrimPrefix(string(full), string(pkg)+"."), ".", "")
	if base, ok := strings.CutSuffix(n, "Response"); ok && base != "" {
		n = base + "Result"
	}
	return n
}

// ref is a reference to a component schema.
func ref(name string) map[string]any { return map[string]any{"$ref": refPrefix + name} }

// describe attaches a description to a schema. A $ref cannot carry siblings
// in OpenAPI 3.0, so a described reference becomes a one-element allOf.
func describe(s map[string]any, desc string) map[string]any {
	if desc == "" {
		return s
	}
	if _, isRef := s["$ref"]; isRef {
		return map[string]any{"allOf": []any{s}, "description": desc}
	}
	s["description"] = desc
	return s
}

// fieldSchema is the schema of one field's JSON value, with the field's comment
// as its description.
func (b *builder) fieldSchema(f *protogen.Field) map[string]any {
	var s map[string]any
	switch {
	case f.Desc.IsMap():
		s = map[string]any{"type": "object", "additionalProperties": b.valueSchema(f.Message.Fields[1])}
	case f.Desc.IsList():
		s = map[string]any{"type": "array", "items": b.valueSchema(f)}
	default:
		s = b.valueSchema(f)
	}
	return describe(s, b.fieldDescription(f))
}

// valueSchema is the schema of a single value of f's type (an element, for a
// list; the value, for a map entry's value field).
func (b *builder) valueSchema(f *protogen.Field) map[string]any {
	switch f.Desc.Kind() {
	case protoreflect.StringKind:
		return map[string]any{"type": "string"}
	case protoreflect.BytesKind:
		return map[string]any{"type": "string", "format": "byte"}
	case protoreflect.BoolKind:
		return map[string]any{"type": "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return map[string]any{"type": "integer", "format": "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return map[string]any{"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return map[string]any{"type": "string", "format": "int64", "pattern": int64Pattern, "example": "42"}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return map[string]any{"type": "string", "format": "uint64", "pattern": uint64Pattern, "example": "42"}
	case protoreflect.FloatKind:
		return map[string]any{"type": "number", "format": "float"}
	case protoreflect.DoubleKind:
		return map[string]any{"type": "number", "format": "double"}
	case protoreflect.EnumKind:
		b.need(f.Enum.Desc.FullName())
		return ref(b.names[f.Enum.Desc.FullName()])
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return b.messageRef(f.Message)
	}
	b.fail(fmt.Errorf("field %s: unsupported kind %s", f.Desc.FullName(), f.Desc.Kind()))
	return map[string]any{}
}

func (b *builder) messageRef(m *protogen.Message) map[string]any {
	switch m.Desc.FullName() {
	case "google.protobuf.Timestamp":
		return ref("Timestamp")
	case "google.protobuf.Duration":
		return ref("Duration")
	case "google.protobuf.Struct":
		return ref("JsonObject")
	case "google.protobuf.Value":
		return ref("JsonValue")
	case "google.protobuf.ListValue":
		return map[string]any{"type": "array", "items": ref("JsonValue")}
	case "google.protobuf.FieldMask":
		return map[string]any{"type": "string", "example": "name,objective",
			"description": "Comma-separated field names in lowerCamelCase, such as `name,objective` (protobuf's JSON form of google.protobuf.FieldMask)."}
	case "google.protobuf.Empty":
		return map[string]any{"type": "object"}
	}
	if strings.HasPrefix(string(m.Desc.FullName()), "google.protobuf.") {
		b.fail(fmt.Errorf("message %s: well-known type not mapped", m.Desc.FullName()))
	}
	b.need(m.Desc.FullName())
	return ref(b.names[m.Desc.FullName()])
}

// fieldDescription is the field's comment, plus what JSON clients must know
// that the comment may not say.
func (b *builder) fieldDescription(f *protogen.Field) string {
	desc := commentText(f.Comments.Leading, f.Comments.Trailing)
	if desc == "" {
		b.undocumented = append(b.undocumented, string(f.Desc.FullName()))
	}
	if oo := f.Oneof; oo != nil && !oo.Desc.IsSynthetic() {
		var others []string
		for _, o := range oo.Fields {
			if o != f {
				others = append(others, "`"+string(o.Desc.Name())+"`")
			}
		}
		desc = strings.TrimSpace(desc + "\n\nAt most one of this field and " + strings.Join(others, ", ") + " is set.")
	}
	return desc
}

// messageSchema is the component schema of a message. Fields that the
// marshaler always writes are required in messages that only ever travel in
// answers, so that generated clients need no undefined checks for them; in
// messages that requests carry every field is optional.
func (b *builder) messageSchema(m *protogen.Message) map[string]any {
	props := newObject()
	var required []string
	for _, f := range m.Fields {
		props.set(string(f.Desc.Name()), b.fieldSchema(f))
		if b.responseOnly[m.Desc.FullName()] && alwaysWritten(f) {
			required = append(required, string(f.Desc.Name()))
		}
	}
	desc := commentText(m.Comments.Leading, m.Comments.Trailing)
	if desc == "" {
		b.undocumented = append(b.undocumented, string(m.Desc.FullName()))
	}
	s := map[string]any{"type": "object", "properties": props, "description": desc}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// alwaysWritten reports whether protojson with EmitDefaultValues writes the
// field even at its zero value: every field but singular messages, oneof
// members and proto3 optional scalars.
func alwaysWritten(f *protogen.Field) bool {
	if f.Desc.ContainingOneof() != nil {
		return false
	}
	if f.Desc.IsList() || f.Desc.IsMap() {
		return true
	}
	k := f.Desc.Kind()
	return k != protoreflect.MessageKind && k != protoreflect.GroupKind
}

// enumSchema is the component schema of an enum: its value names, as the
// gateway writes them, with each value's comment in the description.
func (b *builder) enumSchema(e *protogen.Enum) map[string]any {
	var names []string
	var lines []string
	for _, v := range e.Values {
		names = append(names, string(v.Desc.Name()))
		if c := commentText(v.Comments.Leading, v.Comments.Trailing); c != "" {
			lines = append(lines, fmt.Sprintf("- `%s`: %s", v.Desc.Name(), strings.ReplaceAll(c, "\n", " ")))
		} else {
			lines = append(lines, fmt.Sprintf("- `%s`", v.Desc.Name()))
		}
	}
	desc := commentText(e.Comments.Leading, e.Comments.Trailing)
	if desc == "" {
		b.undocumented = append(b.undocumented, string(e.Desc.FullName()))
	}
	desc = strings.TrimSpace(desc + "\n\nValues travel by name:\n" + strings.Join(lines, "\n"))
	return map[string]any{"type": "string", "enum": names, "description": desc}
}

// commentText turns proto comments into Markdown text: one paragraph per
// blank-line-separated block, lines joined.
func commentText(cs ...protogen.Comments) string {
	var paras []string
	for _, c := range cs {
		text := strings.TrimSpace(string(c))
		if text == "" {
			continue
		}
		for _, block := range strings.Split(text, "\n\n") {
			var para strings.Builder
			for _, l := range strings.Split(block, "\n") {
				if l = strings.TrimSpace(l); l == "" {
					continue
				}
				switch {
				case para.Len() == 0:
				case strings.HasPrefix(l, "- "), strings.HasPrefix(l, "* "):
					para.WriteByte('\n') // a Markdown list item stays on its own line
				default:
					para.WriteByte(' ')
				}
				para.WriteString(l)
			}
			if para.Len() > 0 {
				paras = append(paras, para.String())
			}
		}
	}
	return strings.Join(paras, "\n\n")
}
