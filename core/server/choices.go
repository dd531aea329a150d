package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// choosePlugins names the plugin of each single-instance category: the
// one chosen, or the only plugin among specs that declares the category.
// The core knows no plugin by name: a server with two database plugins
// and no choice refuses to start rather than pick one.
func choosePlugins(specs []pluginhost.Spec, chosen map[sdk.Category]string) (map[sdk.Category]string, error) {
	out := map[sdk.Category]string{}
	for _, c := range config.Singletons {
		if name := chosen[c]; name != "" {
			i := slices.IndexFunc(specs, func(s pluginhost.Spec) bool { return s.Name == name })
			if i < 0 {
				return nil, fmt.Errorf("the %s plugin %q is neither builtin nor installed (install it with `palvella plugin add %s`)", c, name, name)
			}
			if cs := specs[i].Categories; len(cs) > 0 && !slices.Contains(cs, c) {
				return nil, fmt.Errorf("the %s plugin %q is not a %s plugin (it provides %s)", c, name, c, categoryList(cs))
			}
			out[c] = name
			continue
		}
		var found []string
		for _, s := range specs {
			if slices.Contains(s.Categories, c) {
				found = append(found, s.Name)
			}
		}
		switch len(found) {
		case 0:
			if c == sdk.CategoryDatabase || c == sdk.CategoryStorage || c == sdk.CategoryAuthentication || c == sdk.CategoryAuthorization {
				return nil, fmt.Errorf("no %s plugin: choose one in the server's configuration (%s: {plugin: NAME})", c, c)
			}
		case 1:
			out[c] = found[0]
		default:
			return nil, fmt.Errorf("several %s plugins (%s): choose one in the server's configuration (%s: {plugin: NAME})", c, strings.Join(found, ", "), c)
		}
	}
	return out, nil
}

func categoryList(cs []sdk.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

// checkEngines refuses to start with a named engine whose type no engine
// plugin provides, or whose parameters its type refuses, each problem on
// its line of the configuration file.
func checkEngines(ctx context.Context, orch *orchestrator.Orchestrator, file *config.File) error {
	probs, err := orch.CheckEngines(ctx)
	if err != nil {
		return err
	}
	if len(probs) == 0 {
		return nil
	}
	msgs := make([]string, len(probs))
	for i, p := range probs {
		path := fmt.Sprintf("engines[%d]", p.Engine)
		if p.Field != "" {
			path = fmt.Sprintf("engines[%d].%s", p.Engine, p.Field)
		}
		msgs[i] = file.Errorf(path, "%s", p.Message).Error()
	}
	return errors.New(strings.Join(msgs, "\n"))
}
