package spec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

const hashYAML = `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: demo}
spec:
  params:
    - {name: n, type: number, default: 3}
  triggers:
    - {type: interval, name: hourly, every: 60m}
  jobs:
    - name: build
      with: {}
      actions:
        - name: a
          run: make
          env: {A: "1"}
`

// The same pipeline: other key order, flow style, quoting, JSON numbers,
// defaults written out and an equal duration spelled differently.
const hashJSON = `{"spec": {"jobs": [{"actions": [{"on_failure": "fail", "type": "run", "env": {"A": 1},
  "run": "make", "name": "a"}], "when": "success", "name": "build"}],
  "triggers": [{"every": "1h", "name": "hourly", "type": "interval"}],
  "params": [{"default": 3, "type": "number", "name": "n"}]},
 "metadata": {"namespace": "default", "name": "demo"}, "kind": "Pipeline", "apiVersion": "palvella.dev/v1"}`

func mustParse(t *testing.T, src string) *Pipeline {
	t.Helper()
	p, err := Load("pipeline.yaml", []byte(src), knownTypes)
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	return p
}

func TestHashStable(t *testing.T) {
	a, b := mustParse(t, hashYAML), mustParse(t, hashJSON)
	if a.Hash() != b.Hash() {
		ja, _ := a.CanonicalJSON()
		jb, _ := b.CanonicalJSON()
		t.Fatalf("same content, different hashes:\n%s\n%s", ja, jb)
	}
	if !strings.HasPrefix(a.Hash(), "sha256:") || len(a.Hash()) != len("sha256:")+64 {
		t.Errorf("hash %q is not sha256:<64 hex>", a.Hash())
	}
	for _, change := range []struct{ from, to string }{
		{"run: make", "run: make all"},
		{"default: 3", "default: 4"},
		{"every: 60m", "every: 61m"},
		{"name: demo", "name: demo2"},
		{`A: "1"`, `A: "2"`},
	} {
		c := mustParse(t, strings.Replace(hashYAML, change.from, change.to, 1))
		if c.Hash() == a.Hash() {
			t.Errorf("changing %q to %q keeps the hash", change.from, change.to)
		}
	}
}

func TestCanonicalJSONRoundTrips(t *testing.T) {
	a := mustParse(t, hashYAML)
	j, err := a.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	b := mustParse(t, string(j))
	if !reflect.DeepEqual(a.Spec, b.Spec) || a.Hash() != b.Hash() {
		jb, _ := b.CanonicalJSON()
		t.Fatalf("round trip differs:\n%s\n%s", j, jb)
	}
}

func TestPluginActionParams(t *testing.T) {
	p, err := Load("pipeline.yaml", []byte(`apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: demo}
spec:
  jobs:
    - name: build
      actions:
        - {name: a, type: slack/post, url: "http://x", channel: "#ops", retries: 2, extra: {deep: [1, 2.5]}}
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := p.Spec.Jobs[0].Actions[0]
	want := map[string]any{"channel": "#ops", "retries": int64(2), "extra": map[string]any{"deep": []any{int64(1), 2.5}}}
	if !reflect.DeepEqual(a.Params, want) {
		t.Errorf("params = %#v, want %#v", a.Params, want)
	}
	if got := a.ActionParams(); got["url"] != "http://x" || got["channel"] != "#ops" {
		t.Errorf("ActionParams = %v", got)
	}
	j, _ := json.Marshal(a)
	if !strings.Contains(string(j), `"channel":"#ops"`) {
		t.Errorf("plugin params are not inline in %s", j)
	}
}

func TestResolveParams(t *testing.T) {
	p := mustParse(t, `apiVersion: palvella.dev/v1
kind: Pipeline
metadata: {name: demo}
spec:
  params:
    - {name: s, default: x}
    - {name: b, type: boolean, default: false}
    - {name: n, type: number}
    - {name: l, type: list, default: [a]}
    - {name: o, type: object}
    - {name: r, required: true}
  jobs:
    - {name: build, actions: [{name: a, run: make}]}
`)
	got, err := p.Spec.ResolveParams(map[string]string{"b": "true", "n": "2.5", "l": "x, y,z", "o": `{"k": [1]}`, "r": "given"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"s": "x", "b": true, "n": 2.5, "l": []any{"x", "y", "z"}, "o": map[string]any{"k": []any{int64(1)}}, "r": "given"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("params = %#v\nwant %#v", got, want)
	}
	got, err = p.Spec.ResolveParams(map[string]string{"n": "7", "l": `["a", 2]`, "r": ""})
	if err != nil {
		t.Fatal(err)
	}
	if got["n"] != int64(7) || !reflect.DeepEqual(got["l"], []any{"a", int64(2)}) || got["b"] != false || !reflect.DeepEqual(got["o"], map[string]any{}) {
		t.Errorf("params = %#v", got)
	}

	_, err = p.Spec.ResolveParams(map[string]string{"b": "maybe", "n": "ten", "l": "[1,", "o": "[1]", "ss": "x"})
	if !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Fatalf("error %v is not invalid argument", err)
	}
	wantMsgs := []string{
		`params.b: param "b": "maybe" is not a boolean (want true or false)`,
		`params.l: param "l": "[1," is not a JSON list: unexpected EOF`,
		`params.n: param "n": "ten" is not a number`,
		`params.o: param "o": "[1]" is not a JSON object`,
		`params.ss: unknown param "ss" (did you mean "s"?)`,
		`params.r: param "r" is required`,
	}
	if err.Error() != strings.Join(wantMsgs, "\n") {
		t.Errorf("errors:\n%v\nwant:\n%s", err, strings.Join(wantMsgs, "\n"))
	}
	var se *sdk.Error
	if !errors.As(err, &se) || se.Field != "params.b" {
		t.Errorf("first error %v does not name params.b", se)
	}
}
