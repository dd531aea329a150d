package index

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"
)

// TestSchemaMatchesParser keeps docs/registry/index.schema.json and the
// parser's field tables in step.
func TestSchemaMatchesParser(t *testing.T) {
	data, err := os.ReadFile("../../docs/registry/index.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]any `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	check := func(what string, props map[string]any, keys map[string]jsonType) {
		got := slices.Sorted(maps.Keys(props))
		want := slices.Sorted(maps.Keys(keys))
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema has %v, parser accepts %v", what, got, want)
		}
	}
	check("index", schema.Properties, topKeys)
	check("publisher", schema.Defs["publisher"].Properties, publisherKeys)
	check("signature", schema.Defs["signature"].Properties, sigKeys)
	check("plugin", schema.Defs["plugin"].Properties, pluginKeys)
	check("version", schema.Defs["version"].Properties, versionKeys)
	check("artifact", schema.Defs["artifact"].Properties, artifactKeys)
}
