package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/palvella/palvella/core/schema"
	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// offlineOptions check a pipeline file without a server against the
// builtin action and job plugins' types, described in this process: their
// params are checked as a server would. A type no builtin provides (one of
// an installed plugin) is accepted unchecked, as the command says.
func (app *App) offlineOptions(ctx context.Context) spec.Options {
	types := map[sdk.Category]map[string]map[string]any{sdk.CategoryAction: {}, sdk.CategoryJob: {}}
	for _, b := range app.Builtins {
		if b.Describe == nil {
			continue
		}
		m, err := b.Describe(ctx)
		if err != nil {
			continue
		}
		for _, t := range m.Types {
			byName, ok := types[t.Category]
			if !ok {
				continue
			}
			short := strings.TrimPrefix(b.Name, t.Category.String()+"-")
			byName[short+"/"+t.Name] = t.ParamsSchema
			byName[b.Name+"/"+t.Name] = t.ParamsSchema
			if t.Category == sdk.CategoryAction && short == "standard" {
				byName[t.Name] = t.ParamsSchema // run, match, ...: the standard types go unprefixed
			}
		}
	}
	lookup := func(c sdk.Category) func(string) (*schema.Schema, error) {
		if len(types[c]) == 0 {
			return nil // no builtin of the category: nothing to check against
		}
		return func(name string) (*schema.Schema, error) {
			doc, ok := types[c][name]
			if !ok {
				if !strings.Contains(name, "/") && c == sdk.CategoryAction {
					return nil, fmt.Errorf("unknown action type %q", name)
				}
				return nil, nil // an installed plugin's, perhaps: not checked here
			}
			if doc == nil {
				return nil, nil
			}
			return schema.Compile(c.String()+":"+name, doc)
		}
	}
	return spec.Options{ActionType: lookup(sdk.CategoryAction), JobType: lookup(sdk.CategoryJob)}
}
