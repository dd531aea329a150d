// Command schemaplugin is a plugin with a configuration schema and an
// action type's params schema, for the plugin host's tests of schemas. It
// records whether Configure was called in the file named by its
// configuration's "marker", so that a test can tell the core refused a
// configuration before the plugin saw it.
package main

import (
	"context"
	"os"
	"slices"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

type plugin struct{}

func (plugin) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{
		Name: "schemaplugin", Version: "1.0.0",
		Categories:       []sdk.Category{sdk.CategoryAction},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"properties": map[string]any{
				"path":   map[string]any{"type": "string", "minLength": 1},
				"level":  map[string]any{"type": "integer", "minimum": 1},
				"marker": map[string]any{"type": "string"},
			},
			"required": []any{"path"},
		},
		Types: []sdk.TypeInfo{{Category: sdk.CategoryAction, Name: "shout", ParamsSchema: map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"properties": map[string]any{
				"text":  map[string]any{"type": "string", sdk.SchemaScript: true},
				"times": map[string]any{"type": "integer"},
			},
			sdk.SchemaEnv: "env",
		}}},
	}, nil
}

func (plugin) Configure(_ context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	if m, ok := req.Config["marker"].(string); ok && m != "" {
		if err := os.WriteFile(m, []byte("configured"), 0o600); err != nil {
			return nil, err
		}
	}
	return &sdk.ConfigureResponse{}, nil
}

func (plugin) Run(context.Context, *action.RunRequest, action.Events) (*action.Result, error) {
	return &action.Result{Status: action.StatusSuccess}, nil
}

func main() {
	var p plugin
	sdk.Serve(p, action.Service(p))
}
