package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Canonical returns the canonical JSON encoding of v, the exact bytes that
// signatures cover (after a domain prefix, see docs/registry/format.md):
//
//   - objects with keys sorted by their UTF-8 bytes, no duplicate keys;
//   - no whitespace outside strings;
//   - strings as UTF-8 with only `"`, `\` and U+0000..U+001F escaped; the
//     first two as \" and \\, control characters as \u00XX (lowercase hex);
//   - numbers are integers written in decimal without sign for zero or
//     positive values, leading zeros, fraction or exponent;
//   - true, false, null as themselves.
//
// v may hold map[string]any, []any, []string, []int, string, json.Number,
// int, int64, bool and nil.
func Canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case string:
		if !utf8.ValidString(x) {
			return fmt.Errorf("canonical json: string is not valid UTF-8")
		}
		writeString(buf, x)
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return fmt.Errorf("canonical json: number %s is not a 64-bit integer", string(x))
		}
		buf.WriteString(strconv.FormatInt(n, 10))
	case int:
		buf.WriteString(strconv.Itoa(x))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case []string:
		buf.WriteByte('[')
		for i, s := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, s); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case []int:
		buf.WriteByte('[')
		for i, n := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.Itoa(n))
		}
		buf.WriteByte(']')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeCanonical(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("canonical json: unsupported type %T", v)
	}
	return nil
}

func writeString(buf *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			buf.WriteString(`\"`)
		case c == '\\':
			buf.WriteString(`\\`)
		case c < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xf])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}

// decodeTree decodes one JSON value into map[string]any / []any /
// json.Number / string / bool / nil, rejecting duplicate object keys (a
// parser-differential trick) and trailing data.
func decodeTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the top-level value")
	}
	return v, nil
}

const maxDepth = 32

func decodeValue(dec *json.Decoder, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fieldErr(path, "nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: malformed JSON: %w", orRoot(path), err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("%s: malformed JSON: %w", orRoot(path), err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fieldErr(path, "object key is not a string")
				}
				sub := joinPath(path, k)
				if _, dup := m[k]; dup {
					return nil, fieldErr(sub, "duplicate key")
				}
				v, err := decodeValue(dec, sub, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("%s: malformed JSON: %w", orRoot(path), err)
			}
			return m, nil
		case '[':
			a := []any{}
			for i := 0; dec.More(); i++ {
				v, err := decodeValue(dec, fmt.Sprintf("%s[%d]", path, i), depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("%s: malformed JSON: %w", orRoot(path), err)
			}
			return a, nil
		}
		return nil, fieldErr(path, "unexpected delimiter")
	case json.Number:
		if _, err := strconv.ParseInt(string(t), 10, 64); err != nil {
			return nil, fieldErr(path, "must be an integer")
		}
		return t, nil
	default:
		return t, nil
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "index"
	}
	return path
}
