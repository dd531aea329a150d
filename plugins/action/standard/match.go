package standard

import (
	"context"
	"fmt"
	"regexp"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

func (p *Plugin) runMatch(_ context.Context, req *action.RunRequest, events action.Events) (*action.Result, error) {
	pattern, err := reqString(req.Params, "pattern")
	if err != nil {
		return nil, err
	}
	input, err := optString(req.Params, "input", "")
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "params.pattern", "is not a valid regular expression: %v", err)
	}
	groups := []any{}
	named := map[string]any{}
	m := re.FindStringSubmatch(input)
	for _, g := range m {
		groups = append(groups, g)
	}
	if m != nil {
		for i, name := range re.SubexpNames() {
			if name != "" {
				named[name] = m[i]
			}
		}
	}
	res := &action.Result{Status: action.StatusSuccess, Outputs: map[string]any{"matched": m != nil, "groups": groups, "named": named}}
	if m == nil {
		res.Status, res.Message = action.StatusFailure, fmt.Sprintf("the input does not match %s", pattern)
	} else {
		res.Message = fmt.Sprintf("matched %q", clip(m[0]))
	}
	for _, k := range []string{"matched", "groups", "named"} {
		if err := events.Output(k, res.Outputs[k]); err != nil {
			return nil, fmt.Errorf("match action %q: send output %q: %w", req.Name, k, err)
		}
	}
	return res, nil
}
