package spec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/schema"
)

// knownTypes are what the standard and terraform plugins provide, with
// the params schemas their Describe returns (testdata/types.json, written
// from them).
var knownTypes = Options{
	ActionType:  testTypes("action"),
	JobType:     testTypes("job"),
	MinInterval: time.Minute,
}

var typeSchemas = sync.OnceValue(func() map[string]*schema.Schema {
	data, err := os.ReadFile("testdata/types.json")
	if err != nil {
		panic(err)
	}
	var docs map[string]map[string]any
	if err := json.Unmarshal(data, &docs); err != nil {
		panic(err)
	}
	out, err := schema.CompileAll(docs)
	if err != nil {
		panic(err)
	}
	return out
})

func testTypes(category string) func(string) (*schema.Schema, error) {
	return func(name string) (*schema.Schema, error) {
		name = strings.TrimPrefix(name, "standard/")
		if s, ok := typeSchemas()[category+" "+name]; ok {
			return s, nil
		}
		var names []string
		for k := range typeSchemas() {
			if n, ok := strings.CutPrefix(k, category+" "); ok {
				names = append(names, n)
			}
		}
		return nil, fmt.Errorf("unknown %s type %q%s", category, name, suggestion(name, names))
	}
}

// The acceptance examples, copied unchanged from the shared examples.
func TestExamplesParseAndValidate(t *testing.T) {
	for _, f := range []string{"ci.yaml", "alpine-check.yaml", "terraform.yaml"} {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Load(f, data, knownTypes)
			if err != nil {
				t.Fatalf("Load:\n%v", err)
			}
			if p.Metadata.Namespace != DefaultNamespace {
				t.Errorf("namespace = %q, want the default", p.Metadata.Namespace)
			}
		})
	}
}

func TestExampleFields(t *testing.T) {
	data, err := os.ReadFile("testdata/ci.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load("ci.yaml", data, knownTypes)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	webhook := s.Triggers[0]
	if webhook.Type != TriggerWebhook || webhook.Secret == nil || webhook.Secret.FromCredential != "ci-webhook-secret" ||
		webhook.Params["ref"] != "${{ trigger.payload.ref }}" {
		t.Errorf("webhook trigger = %+v", webhook)
	}
	if s.Triggers[1].Every.Value() != 10*time.Minute {
		t.Errorf("interval every = %q", s.Triggers[1].Every)
	}
	build, test, report := s.Job("build"), s.Job("test"), s.Job("report")
	if build.Actions[0].Type != "run" || build.Actions[0].OnFailure != OutcomeFail || build.Actions[0].OnSuccess != OutcomeContinue {
		t.Errorf("compile action = %+v, want a run action with default outcomes", build.Actions[0])
	}
	if !slices.Equal(build.Storage.Put, []StorageEntry{{Path: "out/artifact.txt", Scope: ScopeRun}}) {
		t.Errorf("build storage put = %+v", build.Storage.Put)
	}
	if test.When != WhenSuccess || report.When != WhenAlways || !slices.Equal(test.Requires, []string{"build"}) {
		t.Errorf("when/requires: test %q %v, report %q", test.When, test.Requires, report.When)
	}
}

// The schema published in docs/ is the one the parser embeds.
func TestPublishedSchemaIsEmbedded(t *testing.T) {
	published, err := os.ReadFile("../../docs/pipeline.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(published) != string(Schema()) {
		t.Error("docs/pipeline.schema.json differs from core/spec/schema/pipeline.schema.json: copy it")
	}
}
