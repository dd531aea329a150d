package orchestrator

import (
	"cmp"
	"context"
	"slices"

	"github.com/palvella/palvella/core/api/wire"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Types lists the action, job and engine types of the plugins, each named
// as a pipeline writes it, with the JSON Schema of its params from the
// plugin's manifest (GET /api/v1/types, for pipeline editors). The
// plugins whose types are not known because they did not start are listed
// apart, with why.
func (o *Orchestrator) Types(ctx context.Context) (*wire.TypeList, error) {
	idx, err := o.typeIdx(ctx)
	if err != nil {
		return nil, err
	}
	out := &wire.TypeList{Items: []wire.TypeInfo{}}
	for _, st := range o.opts.Plugins.List() {
		if _, down := idx.down[st.Name]; down {
			continue
		}
		provides := false
		for _, c := range st.Categories {
			provides = provides || c == sdk.CategoryAction || c == sdk.CategoryJob || c == sdk.CategoryEngine
		}
		if !provides {
			continue
		}
		p, err := o.plugin(st.Name)
		if err != nil {
			return nil, err
		}
		m, err := o.manifestWithin(ctx, p)
		if err != nil {
			out.Unavailable = append(out.Unavailable, wire.UnavailablePlugin{Plugin: st.Name, Error: firstLine(err)})
			continue
		}
		for _, t := range m.Types {
			info := wire.TypeInfo{Category: t.Category.String(), Plugin: st.Name, Description: t.Description, ParamsSchema: t.ParamsSchema}
			switch t.Category {
			case sdk.CategoryAction:
				// The bare name when it is this plugin's, as the index
				// resolves it; plugin/type otherwise.
				info.Name = shortName(st.Name, sdk.CategoryAction) + "/" + t.Name
				if ref, ok := idx.actions[t.Name]; ok && ref.plugin == st.Name {
					info.Name = t.Name
				}
			case sdk.CategoryJob:
				info.Name = shortName(st.Name, sdk.CategoryJob) + "/" + t.Name
			case sdk.CategoryEngine:
				info.Name = t.Name
			default:
				continue
			}
			out.Items = append(out.Items, info)
		}
	}
	for p, err := range idx.down {
		out.Unavailable = append(out.Unavailable, wire.UnavailablePlugin{Plugin: p, Error: firstLine(err)})
	}
	slices.SortFunc(out.Items, func(a, b wire.TypeInfo) int {
		return cmp.Or(cmp.Compare(a.Category, b.Category), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(out.Unavailable, func(a, b wire.UnavailablePlugin) int { return cmp.Compare(a.Plugin, b.Plugin) })
	return out, nil
}
