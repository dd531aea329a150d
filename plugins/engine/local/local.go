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

	// user is the configured user commands run as ("" for the default).
	user string
	// deny lists the paths commands must not reach (PALVELLA_HOME and
	// deny_paths); the workspace root is added to them.
	deny []string
	// sandbox is "auto", "landlock" or "none"; containment is "auto",
	// "cgroup" or "process_group".
	sandbox, containment string

	// Resolved from the above and the host by resolve.
	jobUID, jobGID int  // -1: the engine's own
	landlock       bool // commands are sandboxed with Landlock
	cgroup         bool // each command gets its own cgroup
}

func defaultConfig() config {
	return config{
		root:        filepath.Join(os.TempDir(), "palvella-workspaces"),
		shell:       []string{"sh", "-e", "-c"},
		grace:       2 * time.Second,
		sandbox:     "auto",
		containment: "auto",
		jobUID:      -1,
		jobGID:      -1,
	}
}

// Plugin is the local engine. Its zero value is not usable; call New.
type Plugin struct {
	mu         sync.Mutex
	cfg        config
	workspaces map[string]*workspace
	pool       []pooled // kept workspaces (pool.go)
}

var _ engine.Engine = (*Plugin)(nil)

// New returns a local engine with the default configuration; it works
// without Configure.
func New() *Plugin {
	cfg, _ := resolve(defaultConfig())
	return &Plugin{cfg: cfg, workspaces: map[string]*workspace{}}
}

// Serve runs the plugin as a go-plugin server.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	// A host that stops answering (frozen) gets its commands stopped
	// (engine.HostKeepalive).
	opts = append([]sdk.ServeOption{engine.HostKeepalive()}, opts...)
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
				"user": map[string]any{
					"type":        "string",
					"description": "User commands run as: a name, a uid or uid:gid. An engine running as root runs them as 65534:65534 (nobody) unless told otherwise; \"root\" keeps root. Another user needs the engine to run as root.",
				},
				"home": map[string]any{
					"type":        "string",
					"description": "The server's PALVELLA_HOME, which commands must not reach (set by the server).",
				},
				"deny_paths": map[string]any{
					"type":        "array",
					"items":       map[string]any{"type": "string"},
					"description": "More absolute paths commands must not reach when the filesystem sandbox is on.",
				},
				"sandbox": map[string]any{
					"type":        "string",
					"enum":        []any{"auto", "landlock", "none"},
					"default":     "auto",
					"description": "Filesystem sandbox of commands: Landlock when the kernel has it (auto), always (landlock: an error without it) or none.",
				},
				"containment": map[string]any{
					"type":        "string",
					"enum":        []any{"auto", "cgroup", "process_group"},
					"default":     "auto",
					"description": "How a command's processes are held: a cgroup v2 per command when one can be made (auto), always (cgroup), or a process group with the engine as subreaper.",
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
				"properties": map[string]any{
					"shell": map[string]any{
						"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1},
						"description":      "Program and arguments that run a script, instead of the configuration's shell.",
						sdk.SchemaPipeline: true,
					},
					"environ": map[string]any{
						"type": "object", "additionalProperties": map[string]any{"type": "string"},
						"description":      "Variables every command of the job gets; an action's env overrides them.",
						sdk.SchemaPipeline: true,
					},
				},
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
	cfg, more := resolve(cfg)
	diags = append(diags, more...)
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	if err := prepareRoot(cfg); err != nil {
		return &sdk.ConfigureResponse{Diagnostics: append(diags, sdk.Diagnostic{
			Severity: sdk.SeverityError, Field: "config.root",
			Summary: "cannot create the workspace root", Detail: err.Error(),
		})}, nil
	}
	// Whatever an engine that is gone left under this root: its commands
	// are killed and its workspaces removed.
	if err := host.useRoot(cfg.root); err != nil {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Field: "config.root",
			Summary: "could not clean up every interrupted workspace", Detail: err.Error()})
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
		case "user":
			s, ok := v.(string)
			if !ok {
				bad(k, "must be a user name, a uid or uid:gid", fmt.Sprintf("got %T", v))
				continue
			}
			cfg.user = s
		case "home":
			s, ok := v.(string)
			if !ok {
				bad(k, "must be a path", fmt.Sprintf("got %T", v))
				continue
			}
			if s != "" {
				abs, err := filepath.Abs(s)
				if err != nil {
					bad(k, "is not a usable path", err.Error())
					continue
				}
				cfg.deny = append(cfg.deny, abs)
			}
		case "deny_paths":
			list, ok := v.([]any)
			if !ok {
				bad(k, "must be a list of absolute paths", fmt.Sprintf("got %T", v))
				continue
			}
			for i, item := range list {
				s, ok := item.(string)
				if !ok || !filepath.IsAbs(s) {
					bad(fmt.Sprintf("%s[%d]", k, i), "must be an absolute path", fmt.Sprintf("got %v", item))
					continue
				}
				cfg.deny = append(cfg.deny, filepath.Clean(s))
			}
		case "sandbox":
			s, ok := v.(string)
			if !ok || (s != "auto" && s != "landlock" && s != "none") {
				bad(k, `must be "auto", "landlock" or "none"`, fmt.Sprintf("got %v", v))
				continue
			}
			cfg.sandbox = s
		case "containment":
			s, ok := v.(string)
			if !ok || (s != "auto" && s != "cgroup" && s != "process_group") {
				bad(k, `must be "auto", "cgroup" or "process_group"`, fmt.Sprintf("got %v", v))
				continue
			}
			cfg.containment = s
		default:
			bad(k, "unknown setting", "the local engine knows root, shell, kill_grace, user, home, deny_paths, sandbox and containment")
		}
	}
	return cfg, diags
}

func (p *Plugin) config() config {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg := p.cfg
	cfg.shell = slices.Clone(cfg.shell)
	cfg.deny = slices.Clone(cfg.deny)
	return cfg
}
