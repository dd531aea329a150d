// Package standard is the first-party action plugin with the action types
// every pipeline uses: run (a script on the job's engine), approval, match
// (regular expression), compare (expression), notify (HTTP or Slack
// webhook) and fail.
package standard

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/action"
)

// Name is the plugin's name.
const Name = "action-standard"

// Version is the plugin's version.
const Version = "0.1.0"

// Defaults and bounds of the notify action's timeout.
const (
	DefaultNotifyTimeout = 10 * time.Second
	MaxNotifyTimeout     = 2 * time.Minute
)

// Plugin implements the standard action types.
type Plugin struct {
	mu            sync.RWMutex
	host          sdk.Host
	notifyTimeout time.Duration
	httpClient    *http.Client
}

var (
	_ sdk.Plugin    = (*Plugin)(nil)
	_ action.Action = (*Plugin)(nil)
)

// New returns the plugin with its default configuration and no host.
func New() *Plugin {
	return &Plugin{notifyTimeout: DefaultNotifyTimeout, httpClient: newHTTPClient()}
}

// Serve runs the plugin as a go-plugin process.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{action.Service(p)}, opts...)
}

// handler runs one action type.
type handler func(p *Plugin, ctx context.Context, req *action.RunRequest, events action.Events) (*action.Result, error)

// actionType is one type the plugin provides.
type actionType struct {
	description string
	schema      map[string]any
	run         handler
}

// types lists the plugin's action types; Describe and Run read it.
var types = map[string]actionType{
	"run": {
		description: "Run a shell script on the job's engine. Outputs: stdout (the last 64 KiB, trailing newlines removed), exit_code, and key=value lines the script appends to $PALVELLA_OUTPUT.",
		schema: scriptSchema(object(map[string]any{
			"run":     annotate(prop("string", "The script. The values of its ${{ }} reach it through environment variables (PALVELLA_EXPR_1...) in env, never as text."), sdk.SchemaScript),
			"shell":   annotate(items(prop([]any{"string", "array"}, `The shell and its flags, run as [shell..., script]; default "sh -e -c". A single word such as "bash" gets "-e -c" (or "-c" if not a POSIX shell). With another program than a POSIX shell, the script may not hold ${{ }}.`)), sdk.SchemaShell),
			"env":     prop("object", "Environment variables for the script."),
			"workdir": prop("string", "Working directory, relative to the job's workspace."),
		}, []string{"run"}, map[string]any{"run": "echo hello"}), "env"),
		run: (*Plugin).runScript,
	},
	"approval": {
		description: "Hold the job as waiting until someone with permission approves or rejects it.",
		schema: object(map[string]any{
			"message": prop("string", "What the approver is asked."),
		}, nil, map[string]any{"message": "Deploy to production?"}),
		run: (*Plugin).runApproval,
	},
	"match": {
		description: "Match a Go regular expression against input. Outputs: matched (boolean), groups (group 0 is the whole match, an unmatched group is empty) and named (named groups). Fails when there is no match.",
		schema: object(map[string]any{
			"input":   prop("string", "The text to search."),
			"pattern": format(prop("string", "A Go (RE2) regular expression."), "regex"),
		}, []string{"pattern"}, map[string]any{"input": "VERSION_ID=3.18.4", "pattern": "VERSION_ID=([0-9.]+)"}),
		run: (*Plugin).runMatch,
	},
	"compare": {
		description: "Evaluate an expression (expr-lang) over params, job, jobs, actions, trigger and run. Succeeds when it is true, fails when it is false.",
		schema: object(map[string]any{
			"expr": expression(prop("string", `A boolean expression, such as actions.version_match.outputs.groups[1] == params.expected_version.`)),
		}, []string{"expr"}, map[string]any{"expr": "1 + 1 == 2"}),
		run: (*Plugin).runCompare,
	},
	"notify": {
		description: `POST a message to a webhook. format "slack" sends {"text": message}; the default sends {"message": message, "run": {...}}. An empty url skips the action; a non-2xx answer fails it.`,
		schema: object(map[string]any{
			"url":     prop("string", "The webhook URL (http or https). Empty skips the notification."),
			"message": prop("string", "The message."),
			"format":  map[string]any{"type": "string", "enum": []any{"", "default", "slack"}, "description": "Payload format."},
		}, nil, map[string]any{"url": "", "message": "nothing to say", "format": "slack"}),
		run: (*Plugin).runNotify,
	},
	"fail": {
		description: "End with status failure and a message.",
		schema: object(map[string]any{
			"message": prop("string", "Why the job fails."),
		}, nil, map[string]any{"message": "the version does not match"}),
		run: (*Plugin).runFail,
	},
}

// object is the schema of a type's params: the properties listed, and
// no other (so that the core refuses a misspelt or misplaced field when a
// pipeline is applied).
func object(props map[string]any, required []string, examples ...map[string]any) map[string]any {
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		var r []any
		for _, n := range required {
			r = append(r, n)
		}
		s["required"] = r
	}
	var ex []any
	for _, e := range examples {
		ex = append(ex, e)
	}
	s["examples"] = ex
	return s
}

func prop(typ any, description string) map[string]any {
	return map[string]any{"type": typ, "description": description}
}

// format sets a property's format, which the core asserts ("regex": a
// Go regular expression).
func format(p map[string]any, f string) map[string]any {
	p["format"] = f
	return p
}

// items says a list property's items are non-empty strings.
func items(p map[string]any) map[string]any {
	p["items"] = map[string]any{"type": "string", "minLength": 1}
	return p
}

// expression marks a property as an expression that must be true or
// false, which the core checks when a pipeline is applied.
func expression(p map[string]any) map[string]any {
	p[sdk.SchemaExpression] = sdk.ExpressionBoolean
	return p
}

// annotate sets a boolean annotation of the core on a property.
func annotate(p map[string]any, key string) map[string]any {
	p[key] = true
	return p
}

// scriptSchema names the param the core puts the values of a script's
// ${{ }} in.
func scriptSchema(s map[string]any, env string) map[string]any {
	s[sdk.SchemaEnv] = env
	return s
}

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(context.Context) (*sdk.Manifest, error) {
	m := &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Standard actions: run, approval, match, compare, notify, fail.",
		Categories:       []sdk.Category{sdk.CategoryAction},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"notify_timeout": map[string]any{"type": "string", "description": fmt.Sprintf("How long a notify action waits for the webhook, as a Go duration (default %s, at most %s).", DefaultNotifyTimeout, MaxNotifyTimeout)},
			},
			"additionalProperties": false,
		},
	}
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m.Types = append(m.Types, sdk.TypeInfo{Category: sdk.CategoryAction, Name: n, Description: types[n].description, ParamsSchema: types[n].schema})
	}
	return m, nil
}

// Configure reads notify_timeout and keeps the host services for the run
// action. An empty configuration keeps the defaults.
func (p *Plugin) Configure(_ context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	var diags []sdk.Diagnostic
	timeout := DefaultNotifyTimeout
	for k, v := range req.Config {
		switch k {
		case "notify_timeout":
			s, ok := v.(string)
			d, err := time.ParseDuration(s)
			switch {
			case !ok:
				diags = append(diags, configError(k, fmt.Sprintf("notify_timeout must be a duration string such as \"10s\", not %T", v)))
			case err != nil || d <= 0 || d > MaxNotifyTimeout:
				diags = append(diags, configError(k, fmt.Sprintf("notify_timeout %q must be a duration between 0 and %s", s, MaxNotifyTimeout)))
			default:
				timeout = d
			}
		default:
			diags = append(diags, configError(k, fmt.Sprintf("unknown setting %q", k)))
		}
	}
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.host = req.Host
	p.notifyTimeout = timeout
	return &sdk.ConfigureResponse{}, nil
}

func configError(field, summary string) sdk.Diagnostic {
	return sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Field: "config." + field}
}

// Run runs one action of the plugin's types.
func (p *Plugin) Run(ctx context.Context, req *action.RunRequest, events action.Events) (*action.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "request", "no run request")
	}
	t, ok := types[req.Type]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "type", "unknown action type %q (this plugin provides %s)", req.Type, strings.Join(typeNames(), ", "))
	}
	if events == nil {
		events = action.Discard
	}
	return t.run(p, ctx, req, events)
}

func typeNames() []string {
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (p *Plugin) runApproval(_ context.Context, req *action.RunRequest, _ action.Events) (*action.Result, error) {
	msg, err := optString(req.Params, "message", "Waiting for approval")
	if err != nil {
		return nil, err
	}
	return &action.Result{Status: action.StatusWaiting, Message: msg}, nil
}

func (p *Plugin) runFail(_ context.Context, req *action.RunRequest, _ action.Events) (*action.Result, error) {
	msg, err := optString(req.Params, "message", "failed by the pipeline")
	if err != nil {
		return nil, err
	}
	return &action.Result{Status: action.StatusFailure, Message: msg}, nil
}
