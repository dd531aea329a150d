package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// decodeJSON decodes a JSON object into dst, a pointer to a struct, and
// refuses fields other than the given ones. Every error is an
// sdk.ErrInvalidArgument naming the field that is wrong ("body" when the
// body as a whole is).
func decodeJSON(b []byte, dst any, fields ...string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return jsonError(err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(fields, k) {
			return sdk.Errorf(sdk.ErrInvalidArgument, k, "unknown field (the body may have %s)", strings.Join(fields, ", "))
		}
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return jsonError(err)
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return sdk.Errorf(sdk.ErrInvalidArgument, "body", "not valid JSON at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			return sdk.Errorf(sdk.ErrInvalidArgument, "body", "must be a JSON object, not %s", article(typ.Value))
		}
		return sdk.Errorf(sdk.ErrInvalidArgument, field, "must be %s, not %s", jsonKind(typ.Type), article(typ.Value))
	}
	return sdk.Errorf(sdk.ErrInvalidArgument, "body", "not valid JSON")
}

// jsonKind names the JSON type a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a " + t.Kind().String()
}

func article(jsonValue string) string {
	if jsonValue == "" {
		return "this value"
	}
	if strings.ContainsAny(jsonValue[:1], "aeiou") {
		return "an " + jsonValue
	}
	return "a " + jsonValue
}
