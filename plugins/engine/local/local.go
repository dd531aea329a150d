// Package local is the default engine: it runs a job's commands as
// processes on the machine the plugin runs on, each job in a fresh
// directory under a configured root.
//
// Every command runs in its own process group with only the environment
// the pipeline gives it plus a minimal PATH, HOME and TMPDIR; the plugin's
// own environment never leaks in. Its output is streamed as it is written.
// A timeout, Cancel or the caller going away stops the whole group:
// SIGTERM, then SIGKILL after a short grace. Processes a command leaves
// running in its group when it exits are stopped the same way, so a step
// never leaks processes into the next one.
package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
)

// Name is the plugin's name.
const Name = "engine-local"

// Version is the plugin's version.
const Version = "0.1.0"

// TypeName is the engine type this plugin provides.
const TypeName = "local"

// defaultPath is the PATH commands get when the plugin itself has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

// config is the plugin's validated configuration.
type config struct {
	// root holds one directory per workspace.
	root string
	// shell runs scripts as [shell..., script].
	shell []string
	// grace is how long a stopped command has between SIGTERM and SIGKILL.
	grace time.Duration
}

func defaultConfig() config {
	return config{
		root:  filepath.Join(os.TempDir(), "palvella-workspaces"),
		shell: []string{"sh", "-e", "-c"},
		grace: 2 * time.Second,
	}
}

// Plugin is the local engine. Its zero value is not usable; call New.
type Plugin struct {
	mu         sync.Mutex
	cfg        config
	workspaces map[string]*workspace
}

var _ engine.Engine = (*Plugin)(nil)

// New returns a local engine with the default configuration; it works
// without Configure.
func New() *Plugin {
	return &Plugin{cfg: defaultConfig(), workspaces: map[string]*workspace{}}
}

// Serve runs the plugin as a go-plugin server.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	return sdk.ServeWith(p, []sdk.Service{engine.Service(p)}, opts...)
}

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(ctx context.Context) (*sdk.Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", Name, err)
	}
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Runs commands as processes on this machine, each job in its own directory.",
		Categories:       []sdk.Category{sdk.CategoryEngine},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"properties": map[string]any{
				"root": map[string]any{
					"type":        "string",
					"description": "Directory that holds one directory per workspace. Default: palvella-workspaces in the system's temporary directory.",
				},
				"shell": map[string]any{
					"type":        "array",
					"items":       map[string]any{"type": "string", "minLength": 1},
					"minItems":    1,
					"default":     []any{"sh", "-e", "-c"},
					"description": "Program and arguments that run a script: the script is passed as the last argument.",
				},
				"kill_grace": map[string]any{
					"type":        "string",
					"default":     "2s",
					"description": "How long a stopped command has to exit after SIGTERM before it gets SIGKILL, as a Go duration.",
				},
			},
		},
		Types: []sdk.TypeInfo{{
			Category:    sdk.CategoryEngine,
			Name:        TypeName,
			Description: "Commands run on the host, without an image.",
			ParamsSchema: map[string]any{
				"type":                 "object",
				"additionalProperties": false,
				"properties":           map[string]any{},
			},
		}},
	}, nil
}

// Configure validates and applies the configuration. A configuration with
// errors changes nothing.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("configure %s: %w", Name, err)
	}
	cfg, diags := parseConfig(req.Config)
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	if err := os.MkdirAll(cfg.root, 0o700); err != nil {
		return &sdk.ConfigureResponse{Diagnostics: append(diags, sdk.Diagnostic{
			Severity: sdk.SeverityError, Field: "config.root",
			Summary: "cannot create the workspace root", Detail: err.Error(),
		})}, nil
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	return &sdk.ConfigureResponse{Diagnostics: diags}, nil
}

// parseConfig turns the decoded JSON configuration into a config, with a
// diagnostic for every problem.
func parseConfig(raw map[string]any) (config, []sdk.Diagnostic) {
	cfg := defaultConfig()
	var diags []sdk.Diagnostic
	bad := func(field, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary, Detail: detail})
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := raw[k]
		switch k {
		case "root":
			s, ok := v.(string)
			if !ok || s == "" {
				bad(k, "must be a non-empty string", fmt.Sprintf("got %T", v))
				continue
			}
			abs, err := filepath.Abs(s)
			if err != nil {
				bad(k, "is not a usable path", err.Error())
				continue
			}
			cfg.root = abs
		case "shell":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				bad(k, "must be a non-empty list of strings", fmt.Sprintf("got %T", v))
				continue
			}
			shell := make([]string, 0, len(list))
			for i, item := range list {
				s, ok := item.(string)
				if !ok || s == "" {
					bad(fmt.Sprintf("%s[%d]", k, i), "must be a non-empty string", fmt.Sprintf("got %T", item))
					continue
				}
				shell = append(shell, s)
			}
			cfg.shell = shell
		case "kill_grace":
			s, ok := v.(string)
			if !ok {
				bad(k, "must be a duration such as \"2s\"", fmt.Sprintf("got %T", v))
				continue
			}
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				bad(k, "must be a non-negative duration such as \"2s\"", fmt.Sprintf("got %q", s))
				continue
			}
			cfg.grace = d
		default:
			bad(k, "unknown setting", "the local engine knows root, shell and kill_grace")
		}
	}
	return cfg, diags
}

func (p *Plugin) config() config {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg := p.cfg
	cfg.shell = slices.Clone(cfg.shell)
	return cfg
}
