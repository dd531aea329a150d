package server

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Live plugins: `palvella plugin add`, `upgrade` and `remove` change the
// lock file and then ask the server of their home to reload
// (POST /api/v1/plugins/reload). The server re-reads its plugins with
// Config.ReloadPlugins and hands them to the plugin host's Sync: jobs in
// flight finish on the versions they started with, new jobs get the new
// ones, and the binary of a version is deleted (Config.CollectPlugins)
// only once no process of it runs. See docs/design/live-plugins.md.

// livePlugins serves the reload and collects unused plugin binaries.
type livePlugins struct {
	cfg       *Config
	keyConfig map[string]any
	// chosen name the plugin of each single-instance category.
	chosen map[sdk.Category]string
	mgr    *pluginhost.Manager
	log    hclog.Logger

	reloading sync.Mutex // one reload at a time
	collectMu sync.Mutex // one collection at a time
}

// reloadable is the API's backend with the reload route.
type reloadable struct {
	backend
	*livePlugins
}

var _ api.PluginReloader = (*livePlugins)(nil)

// singleInstance are the categories of which the server uses one plugin,
// chosen at start: such a plugin may be upgraded live, not removed.
var singleInstance = []sdk.Category{sdk.CategoryDatabase, sdk.CategoryStorage, sdk.CategoryCredential,
	sdk.CategoryAuthentication, sdk.CategoryAuthorization}

// ReloadPlugins re-reads the plugins to host and applies the difference.
func (l *livePlugins) ReloadPlugins(ctx context.Context) (*api.ReloadResult, error) {
	if l.cfg.ReloadPlugins == nil {
		return nil, sdk.Errorf(sdk.ErrUnimplemented, "", "this server was given its plugins once and cannot re-read them; restart it to apply a change")
	}
	l.reloading.Lock()
	defer l.reloading.Unlock()
	specs, err := l.cfg.ReloadPlugins()
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "read the plugins to host: %s", err)
	}
	specs, err = l.prepare(ctx, specs)
	if err != nil {
		return nil, err
	}
	if err := l.checkRemovals(specs); err != nil {
		return nil, err
	}
	res, err := l.mgr.Sync(specs)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "", "%s", err)
	}
	if res.Changed() {
		l.log.Info("plugins reloaded", "added", res.Added, "replaced", res.Replaced, "removed", res.Removed)
	}
	// Start what is new now, so that one that cannot start says so in the
	// answer rather than in the first job that needs it.
	l.start(ctx, append(slices.Clone(res.Added), res.Replaced...))
	l.collect()
	return &api.ReloadResult{SyncResult: *res, Plugins: l.mgr.Report()}, nil
}

// prepare gives each spec what Run gives it at start: its own copy of its
// configuration, the credential key for the plugin that takes it, and
// the values of the credentials its configuration names.
func (l *livePlugins) prepare(ctx context.Context, specs []pluginhost.Spec) ([]pluginhost.Spec, error) {
	out := make([]pluginhost.Spec, 0, len(specs))
	var creds []pluginhost.Spec
	for _, spec := range specs {
		spec.Config = maps.Clone(spec.Config)
		if spec.Name == l.cfg.SecretKeyPlugin {
			if spec.Config == nil {
				spec.Config = map[string]any{}
			}
			maps.Copy(spec.Config, l.keyConfig)
		}
		if namesCredentials(spec.Config) {
			creds = append(creds, spec)
			continue
		}
		out = append(out, spec)
	}
	if len(creds) == 0 {
		return out, nil
	}
	c, err := (&security{mgr: l.mgr, choices: l.choices()}).credentials(ctx)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "plugin %s names credentials in its configuration: %s", creds[0].Name, err)
	}
	for _, spec := range creds {
		resolved, err := resolveCredentials(ctx, c, spec.Config, "config")
		if err != nil {
			return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "", "configure plugin %s: %s", spec.Name, err)
		}
		spec.Config = resolved.(map[string]any)
		out = append(out, spec)
	}
	return out, nil
}

// checkRemovals refuses to remove a plugin the server uses as its
// database, storage, credential, authentication or authorization plugin:
// the server chose it at start and cannot run without it.
func (l *livePlugins) checkRemovals(specs []pluginhost.Spec) error {
	keep := map[string]bool{}
	for _, s := range specs {
		keep[s.Name] = true
	}
	for _, st := range l.mgr.List() {
		if keep[st.Name] {
			continue
		}
		for _, c := range singleInstance {
			if l.choices()[c] == st.Name {
				return sdk.Errorf(sdk.ErrFailedPrecondition, "", "plugin %s is this server's %s plugin: it can be upgraded while the server runs, not removed; stop the server, or choose another %s plugin in its configuration and restart it", st.Name, c, c)
			}
		}
	}
	return nil
}

func (l *livePlugins) choices() map[sdk.Category]string { return l.chosen }

// start launches plugins, at most StartTimeout each, all at once; one that
// cannot start is logged and shows it in its status.
func (l *livePlugins) start(ctx context.Context, names []string) {
	var wg sync.WaitGroup
	for _, name := range names {
		p, err := l.mgr.Plugin(name)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := p.Start(sctx); err != nil {
				l.log.Error("plugin does not start after the reload; jobs that need it fail naming it", "plugin", name, "error", err)
			}
		}()
	}
	wg.Wait()
}

// collect deletes the installed binaries no plugin of the server may run.
func (l *livePlugins) collect() {
	if l.cfg.CollectPlugins == nil || l.mgr == nil {
		return
	}
	l.collectMu.Lock()
	defer l.collectMu.Unlock()
	l.cfg.CollectPlugins(l.mgr.Paths())
}

// drained is told when a replaced or removed version stopped for good.
func (l *livePlugins) drained(spec pluginhost.Spec) {
	l.log.Info("replaced plugin version stopped after its last job", "plugin", spec.Name, "version", spec.Version)
	l.collect()
}
