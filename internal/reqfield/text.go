package reqfield

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// Text refuses a string field that storage cannot hold: invalid UTF-8, or a
// NUL character, which PostgreSQL's text and jsonb types reject (so the
// request would otherwise fail there, as INTERNAL). Lengths are the
// caller's to check, with TooLong.
func Text(field, s string) error {
	if reason := textProblem(s); reason != "" {
		return domainerr.Invalid(field, reason)
	}
	return nil
}

func textProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain a NUL character (\\u0000)"
	}
	return ""
}

// Texts applies Text to every element of a repeated string field.
func Texts(field string, ss []string) error {
	for i, s := range ss {
		if err := Text(fmt.Sprintf("%s[%d]", field, i), s); err != nil {
			return err
		}
	}
	return nil
}

// TextMap applies Text to every key and value of a map field.
func TextMap(field string, m map[string]string) error {
	for k, v := range m {
		if reason := textProblem(k); reason != "" {
			return domainerr.Invalid(field, "every key "+reason)
		}
		if err := Text(field+"["+safeQuote(k)+"]", v); err != nil {
			return err
		}
	}
	return nil
}

// Struct applies Text to every key and string value of a Struct, however
// deeply nested; the field named in the error is the path to the value
// (payload.a.b[2]). A nil Struct is fine.
func Struct(field string, s *structpb.Struct) error {
	if s == nil {
		return nil
	}
	return structFields(field, s.GetFields())
}

func structFields(path string, fields map[string]*structpb.Value) error {
	for k, v := range fields {
		if reason := textProblem(k); reason != "" {
			return domainerr.Invalid(path, "every key "+reason)
		}
		if err := structValue(path+"."+k, v); err != nil {
			return err
		}
	}
	return nil
}

func structValue(path string, v *structpb.Value) error {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return Text(path, k.StringValue)
	case *structpb.Value_StructValue:
		return structFields(path, k.StructValue.GetFields())
	case *structpb.Value_ListValue:
		for i, e := range k.ListValue.GetValues() {
			if err := structValue(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}

// safeQuote shows a map key in a field path without repeating the bytes
// that made it unusable.
func safeQuote(k string) string {
	return fmt.Sprintf("%q", strings.ToValidUTF8(k, "\uFFFD"))
}
