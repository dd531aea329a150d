// Package nomad is the Nomad engine: each Palvella job is one Nomad batch
// job, registered through Nomad's HTTP API (github.com/hashicorp/nomad/api),
// whose single task (raw_exec or docker driver) holds the job's allocation
// open while the job's commands run in it through the allocation exec API.
//
// One Nomad job per Palvella job, not one per command: the job is placed
// once (a scheduling round costs far more than an exec), its commands share
// the allocation's directory as their workspace, and files are read back
// through the allocation filesystem API. Each command carries a marker in
// its environment (PALVELLA_EXEC); stopping a command (its timeout, Cancel,
// the caller going away) signals every process of the allocation's view
// that carries it, and when a command ends what it left running is killed
// the same way, so nothing of one step survives into the next.
//
// Jobs carry the meta keys palvella_engine, palvella_owner (the plugin
// process) and palvella_host (its machine). A plugin process holds a lock
// file for its owner ID while it runs; at start (Configure, and the first
// use of another Nomad cluster) it stops and purges the jobs of this
// machine's owners whose lock no process holds any more.
package nomad

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/engine"
	"github.com/palvella/palvella/plugins/engine/internal/ownerlock"
	engineparams "github.com/palvella/palvella/plugins/engine/internal/params"
)

// Name is the plugin's name.
const Name = "engine-nomad"

// Version is the plugin's version.
const Version = "0.1.0"

// TypeName is the engine type this plugin provides.
const TypeName = "nomad"

// Meta keys on every job the engine registers. Nomad meta keys become
// NOMAD_META_* variables, so they hold no dots.
const (
	metaEngine    = "palvella_engine"
	metaOwner     = "palvella_owner"
	metaHost      = "palvella_host"
	metaState     = "palvella_state" // ownerlock.DirID of the owner's state directory: a sweep stops only the jobs that carry its own
	metaWorkspace = "palvella_workspace"
	metaNamespace = "palvella_namespace"
	metaPipeline  = "palvella_pipeline"
	metaRun       = "palvella_run"
	metaJob       = "palvella_job"
)

// jobPrefix starts the ID of every Nomad job the engine registers.
const jobPrefix = "palvella-"

// config is the plugin's configuration: the defaults of the type's
// parameters and the plugin's own settings.
type config struct {
	params params
	// stateDir holds the owner lock files.
	stateDir string
	// grace is how long a stopped command has between SIGTERM and SIGKILL.
	grace time.Duration
	// startTimeout bounds how long Setup waits for the job's allocation to
	// run (placement, image pull, task start).
	startTimeout time.Duration
}

func defaultConfig() config {
	return config{
		params:       defaultParams(),
		stateDir:     filepath.Join(os.TempDir(), "palvella-engine-nomad"),
		grace:        2 * time.Second,
		startTimeout: 5 * time.Minute,
	}
}

// ownKeys are the configuration keys that are not type parameters.
var ownKeys = map[string]bool{"state_dir": true, "kill_grace": true, "start_timeout": true}

// Plugin is the Nomad engine. Its zero value is not usable; call New.
type Plugin struct {
	log   hclog.Logger
	owner string
	host  string

	mu         sync.Mutex
	cfg        config
	workspaces map[string]*workspace
	clusters   map[string]*cluster
	locks      ownerlock.Locks // owner lock per state directory
}

var _ engine.Engine = (*Plugin)(nil)

// New returns a Nomad engine with the default configuration: the agent of
// NOMAD_ADDR (and the other NOMAD_* variables of Nomad's CLI), or
// http://127.0.0.1:4646.
func New() *Plugin {
	hostname, _ := os.Hostname()
	return &Plugin{
		log:        sdk.Logger(Name),
		owner:      randomID(16),
		host:       hostname,
		cfg:        defaultConfig(),
		workspaces: map[string]*workspace{},
		clusters:   map[string]*cluster{},
	}
}

// Serve runs the plugin as a go-plugin server.
func Serve(opts ...sdk.ServeOption) int {
	p := New()
	// A host that stops answering (frozen) gets its commands stopped
	// (engine.HostKeepalive).
	opts = append([]sdk.ServeOption{engine.HostKeepalive()}, opts...)
	return sdk.ServeWith(p, []sdk.Service{engine.Service(p)}, opts...)
}

// Owner is the ID this plugin process marks the jobs it registers with.
func (p *Plugin) Owner() string { return p.owner }

// Describe returns the plugin's manifest.
func (p *Plugin) Describe(ctx context.Context) (*sdk.Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", Name, err)
	}
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	return &sdk.Manifest{
		Name:             Name,
		Version:          Version,
		Description:      "Runs each job as a Nomad batch job (raw_exec or docker driver), its commands executed in the job's allocation.",
		Categories:       []sdk.Category{sdk.CategoryEngine},
		ProtocolVersions: slices.Clone(sdk.ProtocolVersions),
		ConfigSchema: paramsSchema(map[string]any{
			"state_dir":     str("Directory of the lock files that tell live engine processes from killed ones. Default: palvella-engine-nomad in the system's temporary directory."),
			"kill_grace":    str("How long a stopped command has to exit after SIGTERM before it gets SIGKILL, as a Go duration (whole seconds are used). Default 2s."),
			"start_timeout": str("How long a job's allocation may take to be placed and started (image pull included) before Setup fails, as a Go duration. Default 5m."),
		}),
		Types: []sdk.TypeInfo{{
			Category:     sdk.CategoryEngine,
			Name:         TypeName,
			Description:  "Commands run in a Nomad batch job's allocation: raw_exec (on the client's host, no isolation) or docker (in a container of an image).",
			ParamsSchema: paramsSchema(nil),
		}},
	}, nil
}

// Configure validates and applies the configuration, then stops and purges
// what killed engine processes of this machine left on the configured
// cluster. A cluster that cannot be reached is a warning, not an error:
// jobs fail with the reason when they start.
func (p *Plugin) Configure(ctx context.Context, req *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("configure %s: %w", Name, err)
	}
	cfg, diags := parseConfig(req.Config)
	if sdk.HasErrors(diags) {
		return &sdk.ConfigureResponse{Diagnostics: diags}, nil
	}
	if err := p.lockOwner(cfg.stateDir); err != nil {
		return &sdk.ConfigureResponse{Diagnostics: append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config.state_dir",
			Summary: "cannot hold the engine's lock file", Detail: err.Error()})}, nil
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	if _, err := p.clusterFor(ctx, cfg.params); err != nil {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Field: "config.address",
			Summary: "the Nomad cluster cannot be reached now; jobs on this engine will fail until it can", Detail: err.Error()})
	}
	return &sdk.ConfigureResponse{Diagnostics: diags}, nil
}

func parseConfig(raw map[string]any) (config, []sdk.Diagnostic) {
	cfg := defaultConfig()
	params, diags := parseParams(raw, cfg.params, "config.", func(k string) bool { return ownKeys[k] })
	cfg.params = params
	bad := func(field, summary string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary})
	}
	badf := func(field, summary string, args ...any) { bad(field, fmt.Sprintf(summary, args...)) }
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case "state_dir":
			if abs, ok := engineparams.AbsPath(k, v, badf); ok {
				cfg.stateDir = abs
			}
		case "kill_grace", "start_timeout":
			s, _ := v.(string)
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || (k == "start_timeout" && d == 0) {
				bad(k, fmt.Sprintf("must be a positive duration such as \"2s\" (got %v)", v))
				continue
			}
			if k == "kill_grace" {
				cfg.grace = d
			} else {
				cfg.startTimeout = d
			}
		}
	}
	return cfg, diags
}

func (p *Plugin) config() config {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg := p.cfg
	cfg.params = cfg.params.clone()
	return cfg
}
