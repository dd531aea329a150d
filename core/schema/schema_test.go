package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustCompile(t testing.TB, doc string) *Schema {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	s, err := Compile("test", m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func problems(s *Schema, v any, opts Options) string {
	var lines []string
	for _, p := range s.Check(v, opts) {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

const typeSchema = `{
  "type": "object",
  "additionalProperties": false,
  "x-palvella-env": "env",
  "required": ["pattern"],
  "properties": {
    "pattern": {"type": "string", "format": "regex", "x-palvella-script": true},
    "format": {"enum": ["", "default", "slack"]},
    "count": {"type": "integer", "minimum": 1},
    "shell": {"type": ["string", "array"], "items": {"type": "string", "minLength": 1}},
    "vars": {"type": "object", "properties": {"n": {"type": "number"}}},
    "when": {"anyOf": [{"type": "boolean"}, {"enum": ["true", "false"]}]}
  }
}`

func TestCheck(t *testing.T) {
	s := mustCompile(t, typeSchema)
	for _, tc := range []struct {
		name  string
		value map[string]any
		want  string
	}{
		{"valid", map[string]any{"pattern": "a+", "format": "slack", "count": int64(2), "shell": []any{"bash", "-c"}}, ""},
		{"missing and unknown, with a suggestion", map[string]any{"patern": "x"},
			"missing field \"pattern\"\npatern: unknown field (did you mean \"pattern\"?)"},
		{"types and bounds", map[string]any{"pattern": "x", "count": 0, "shell": []any{""}, "vars": map[string]any{"n": "one"}},
			"count: must be at least 1\nshell[0]: must not be empty\nvars.n: got string, want number"},
		{"formats and enums", map[string]any{"pattern": "([", "format": "teams"},
			"format: unknown value \"teams\" (want \"\", default or slack)\npattern: invalid regular expression: error parsing regexp: missing closing ]: `[`"},
		{"the likely branch of an anyOf", map[string]any{"pattern": "x", "when": "maybe"}, `when: unknown value "maybe" (want true or false)`},
		{"odd keys are quoted", map[string]any{"pattern": "x", "a b": 1}, `["a b"]: unknown field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := problems(s, tc.value, Options{}); got != tc.want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// A string holding ${{ }} is known only at run time: problems about it (and
// only it) wait, and come back once it is interpolated.
func TestInterpolatedValuesAreDeferred(t *testing.T) {
	s := mustCompile(t, typeSchema)
	v := map[string]any{"pattern": "${{ params.re }}(", "format": "${{ params.f }}", "count": "${{ params.n }}", "when": "${{ x }}", "shell": 3}
	if got, want := problems(s, v, Options{Deferred: Interpolated}), "shell: got number, want string or array"; got != want {
		t.Errorf("deferred check:\n%s\nwant:\n%s", got, want)
	}
	v = map[string]any{"pattern": "a(", "format": "teams", "count": "3", "when": "maybe", "shell": "sh"}
	got := problems(s, v, Options{})
	for _, want := range []string{"count: got string, want integer", "format: unknown value \"teams\"", "pattern: invalid regular expression", "when: "} {
		if !strings.Contains(got, want) {
			t.Errorf("after interpolation, problems do not say %q:\n%s", want, got)
		}
	}
}

func TestCompile(t *testing.T) {
	// Palvella's annotations, and keywords of no vocabulary, are allowed.
	s := mustCompile(t, `{"type": "object", "x-vendor": {"any": "thing"}, "properties": {"run": {"type": "string", "x-palvella-script": true}}}`)
	if b, _ := s.Property("run")["x-palvella-script"].(bool); !b || s.Properties()[0] != "run" {
		t.Errorf("annotations not kept: %v", s.Doc())
	}
	// Another document is never read, whatever the URL.
	for _, ref := range []string{"file:///etc/passwd", "https://example.com/s.json", "other.json"} {
		_, err := Compile("remote", map[string]any{"$ref": ref})
		if !errors.Is(err, ErrRemoteRef) {
			t.Errorf("$ref %s: %v, want ErrRemoteRef", ref, err)
		}
	}
	// A schema that is not one is refused, naming it.
	if _, err := Compile("action-x/y", map[string]any{"type": "strnig"}); err == nil || !strings.Contains(err.Error(), "action-x/y") {
		t.Errorf("invalid schema: %v", err)
	}
	// Go values of other shapes read as their JSON.
	s, err := Compile("go", map[string]any{"type": "object", "required": []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := problems(s, map[string]any{}, Options{}); got != `missing field "a"` {
		t.Errorf("required from a []string: %q", got)
	}
	// The same document compiles once.
	again, err := Compile("go", map[string]any{"type": "object", "required": []string{"a"}})
	if err != nil || again != s {
		t.Errorf("same document compiled again: %p %p %v", s, again, err)
	}
}

func TestJoin(t *testing.T) {
	for _, tc := range [][3]string{
		{"spec.jobs[0]", "pattern", "spec.jobs[0].pattern"},
		{"spec.jobs[0].with", "", "spec.jobs[0].with"},
		{"a", `["b c"]`, `a["b c"]`},
		{"a", "[2].x", "a[2].x"},
		{"", "x", "x"},
	} {
		if got := Join(tc[0], tc[1]); got != tc[2] {
			t.Errorf("Join(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

// Whatever a pipeline or a plugin's configuration holds, a check says what
// is wrong without failing, and every problem has a message.
func FuzzCheck(f *testing.F) {
	s := mustCompile(f, typeSchema)
	for _, seed := range []string{`{}`, `{"pattern": "(["}`, `{"when": 3, "vars": {"n": []}}`, `[1, "x"]`, `"${{ a }}"`, `{"a b": {"c": null}}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		for _, opts := range []Options{{}, {Deferred: Interpolated}} {
			for _, p := range s.Check(v, opts) {
				if p.Message == "" {
					t.Fatalf("a problem without a message at %q for %s", p.Path, doc)
				}
			}
		}
	})
}

// Compiling a type's schema once per launch costs this much the first time
// (cold) and, for a plugin that restarts with the same schemas, the
// lookup by content (warm). Compare the two in one run: warm/cold is the
// share a relaunch pays.
func BenchmarkCompileSchemas(b *testing.B) {
	docs := map[string]map[string]any{}
	for _, n := range []string{"run", "approval", "match", "compare", "notify", "fail"} {
		var m map[string]any
		if err := json.Unmarshal([]byte(typeSchema), &m); err != nil {
			b.Fatal(err)
		}
		m["title"] = n
		docs[n] = m
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			cacheMu.Lock()
			clear(cache)
			cacheMu.Unlock()
			if _, err := CompileAll(docs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, err := CompileAll(docs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
