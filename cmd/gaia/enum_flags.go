package main

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protobuf enums on the command line: flags take a value's short name
// (worker for SESSION_TIER_WORKER) and tables show it the same way.

// enumPrefix is what every value name of an enum starts with:
// SESSION_TIER_UNSPECIFIED → SESSION_TIER_.
func enumPrefix(d protoreflect.EnumDescriptor) string {
	zero := d.Values().ByNumber(0)
	if zero == nil {
		return ""
	}
	return strings.TrimSuffix(string(zero.Name()), "UNSPECIFIED")
}

// enumShortNames lists the values a flag accepts, in declaration order,
// without UNSPECIFIED.
func enumShortNames(d protoreflect.EnumDescriptor) []string {
	prefix := enumPrefix(d)
	var names []string
	for i := 0; i < d.Values().Len(); i++ {
		if v := d.Values().Get(i); v.Number() != 0 {
			names = append(names, strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix)))
		}
	}
	return names
}

// enumName shows an enum value the way the flags take it: SESSION_STATUS_ACTIVE
// → active. Unset is "-"; a number this build does not know is shown as one.
func enumName(e protoreflect.Enum) string {
	if e.Number() == 0 {
		return "-"
	}
	d := e.Descriptor()
	v := d.Values().ByNumber(e.Number())
	if v == nil {
		return fmt.Sprint(int32(e.Number()))
	}
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), enumPrefix(d)))
}

// parseEnum reads a flag's enum value by its short name (case and '-' for '_'
// do not matter; the full name is accepted too). Anything else is a usage
// error that names the flag and lists what it takes.
func parseEnum(flag, value string, d protoreflect.EnumDescriptor) (protoreflect.EnumNumber, error) {
	want := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(value), "-", "_"))
	prefix := strings.ToLower(enumPrefix(d))
	for i := 0; i < d.Values().Len(); i++ {
		v := d.Values().Get(i)
		if v.Number() == 0 {
			continue
		}
		full := strings.ToLower(string(v.Name()))
		if want != "" && (want == strings.TrimPrefix(full, prefix) || want == full) {
			return v.Number(), nil
		}
	}
	return 0, usageError{fmt.Errorf("invalid value %q for --%s: want one of %s", value, flag, strings.Join(enumShortNames(d), ", "))}
}
