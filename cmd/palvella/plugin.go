package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/spf13/cobra"
)

func newPluginCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "List, describe, install and remove plugins",
		Long: `Plugins are separate programs that Palvella launches and talks to over gRPC.
Builtin plugins are compiled into this binary; installed plugins live in
$PALVELLA_HOME/plugins and are recorded, with their sha256, in the lock file.
A server running on this home applies add, upgrade and remove without a
restart: jobs in flight finish on the versions they started with.`,
	}
	cmd.AddCommand(newPluginListCmd(app), newPluginDescribeCmd(app), newPluginServeCmd(app),
		newPluginAddCmd(app), newPluginInfoCmd(app), newPluginSearchCmd(app), newPluginUpgradeCmd(app), newPluginRemoveCmd(app), newPluginVerifyCmd(app), newPluginReloadCmd(app))
	return cmd
}

// pluginRow is one line of `palvella plugin list`.
type pluginRow struct {
	Name       string         `json:"name"`
	Version    string         `json:"version"`
	Categories []sdk.Category `json:"categories"`
	Source     string         `json:"source"`
	// Registry and SignedBy say where an installed plugin came from and
	// which publisher keys signed it (see provenance).
	Registry string   `json:"registry,omitempty"`
	SignedBy []string `json:"signedBy,omitempty"`
	// State is "ready", "missing", "modified", "unreadable", "edited" (the
	// lock disagrees with the binary's manifest or its artifact), "broken"
	// (its lock entry cannot be used), "revoked" or "yanked".
	State string `json:"state"`
	// Yanked is the reason its registry gave for yanking this version.
	Yanked  string `json:"yanked,omitempty"`
	Path    string `json:"path"`
	Problem string `json:"problem,omitempty"`
	// Instances are the processes the server of this home runs for the
	// plugin (empty when none runs or no server answers): during an
	// upgrade, the new version serving and the old one draining.
	Instances []pluginhost.Instance `json:"instances"`
}

func newPluginListCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List builtin and installed plugins",
		Long: `List builtin and installed plugins with their categories, version, source and
state. SOURCE is "builtin", "registry NAME (key ID)" with the publisher keys
that signed it, or "local (unsigned)". The state of an installed plugin comes
from checking its binary against the sha256 recorded at install: "ready",
"modified" (refused at launch) or "missing"; "revoked" when every key that
signed it was revoked by its registry's root since; "yanked" when its
registry yanked the installed version (as of the last read of the registry).
"edited" means the lock was edited by hand: the version it records is not
the one the binary reports, or its sha256 is not the signed artifact's.
"broken" means the lock entry cannot be used (it names a category this
palvella does not know, or does not validate): the plugin is not launched,
the others work, and plugin remove NAME takes it out. The reason of every
state but "ready" is printed under the table.

When a server runs on this home, RUNNING shows the processes it runs for each
plugin and the version each serves: after an upgrade, the new version, and
the old one "draining" while the jobs that started on it finish. A plugin
removed while jobs used it is listed in state "draining" until they end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			rows, err := app.pluginRows(cmd.Context())
			if err != nil {
				return err
			}
			rows = withInstances(rows, app.instancesOf(cmd.Context()))
			if output == "json" {
				return writeJSON(app.Out, rows)
			}
			prov := app.provenances()
			t := newTable(app.Out, "NAME", "VERSION", "CATEGORIES", "SOURCE", "STATE", "RUNNING")
			var notes []string
			for _, r := range rows {
				src := r.Source
				if p, ok := prov[r.Name]; ok && r.Source != string(pluginhost.SourceBuiltin) {
					src = p.label()
				}
				t.row(r.Name, orDash(r.Version), orDash(joinCategories(r.Categories)), src, r.State, runningColumn(r.Instances))
				if r.Problem != "" && r.State != "ready" && r.State != string(pluginhost.StateDraining) {
					notes = append(notes, fmt.Sprintf("%s is %s: %s", r.Name, r.State, r.Problem))
				}
			}
			if err := t.flush(); err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(app.Out, n)
			}
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func (app *App) pluginRows(ctx context.Context) ([]pluginRow, error) {
	specs, err := app.pluginSpecs()
	if err != nil {
		return nil, err
	}
	rows := make([]pluginRow, 0, len(specs))
	prov := app.provenances()
	edited := app.editedLocks(ctx, specs)
	for _, s := range specs {
		r := pluginRow{Name: s.Name, Version: s.Version, Categories: s.Categories, Source: string(s.Source), Path: s.Path, State: "ready", Instances: []pluginhost.Instance{}}
		if r.Categories == nil {
			r.Categories = []sdk.Category{}
		}
		if p, ok := prov[s.Name]; ok && s.Source != pluginhost.SourceBuiltin {
			r.Registry, r.SignedBy = p.Registry, p.SignedBy
			if p.Yanked {
				r.Yanked = cmp.Or(p.YankedReason, "yanked")
				r.State, r.Problem = "yanked", p.yankedProblem(s.Version)
			}
			if p.AllRevoked {
				r.State, r.Problem = "revoked", p.revokedProblem()
			}
		}
		if s.Broken != "" {
			r.State, r.Problem = "broken", s.Broken+"; it is not launched (remove it with palvella plugin remove "+s.Name+")"
			rows = append(rows, r)
			continue
		}
		if err := edited[s.Name]; err != nil {
			r.State, r.Problem = "edited", err.Error()
		}
		if s.Source != pluginhost.SourceBuiltin {
			sum, err := pluginhost.SHA256File(s.Path)
			switch {
			case errors.Is(err, os.ErrNotExist):
				r.State, r.Problem = "missing", "the binary is not at its installed path"
			case err != nil:
				r.State, r.Problem = "unreadable", err.Error()
			case sum != s.SHA256:
				r.State, r.Problem = "modified", "the binary's sha256 differs from the one recorded at install; it will be refused at launch"
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func newPluginDescribeCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe NAME|PATH",
		Short: "Launch a plugin through the plugin host and print its manifest",
		Long: `Launch a plugin exactly as the server would (handshake, mutual TLS, checksum,
minimal environment), ask it to describe itself, and stop it.

The argument is the name of a builtin or installed plugin, or the path of a
plugin binary (anything containing a slash, such as ./bin/my-plugin). A binary
given by path is checked against the sha256 it has now.

Source says where the plugin came from: "builtin", "registry NAME (key ID)"
with the publisher keys that signed it, "local (unsigned)" for a binary
installed from a file, or "path". A version its registry yanked, or whose
every signing key its registry's root revoked, says so. A plugin whose lock
entry is broken is not launched: the command says why.`,
		Example: `  palvella plugin describe engine-local
  palvella plugin describe ./bin/my-plugin -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			spec, err := app.resolvePlugin(args[0])
			if err != nil {
				return err
			}
			if spec.Broken != "" {
				return fmt.Errorf("plugin %s is broken: %s; it is not launched: remove it with palvella plugin remove %s, then add it again", spec.Name, spec.Broken, spec.Name)
			}
			m, err := pluginhost.New(pluginhost.Options{Logger: app.logger("plugin")})
			if err != nil {
				return err
			}
			defer m.Shutdown()
			p, err := m.Add(spec)
			if err != nil {
				return err
			}
			manifest, err := p.Manifest(cmd.Context())
			if err != nil {
				return err
			}
			d := app.describeLabels(spec, manifest)
			if output == "json" {
				return writeJSON(app.Out, d)
			}
			printManifest(app, d, p.Status())
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// described is plugin describe's output: the plugin's manifest and where
// it came from.
type described struct {
	*sdk.Manifest
	// Source is "builtin", "registry NAME (key ID)", "local (unsigned)" or
	// "path" (a binary named on the command line).
	Source   string   `json:"source"`
	Registry string   `json:"registry,omitempty"`
	SignedBy []string `json:"signedBy,omitempty"`
	// Yanked and Revoked say why the installed version should be moved
	// off: its registry yanked it, or revoked every key that signed it.
	Yanked  string `json:"yanked,omitempty"`
	Revoked string `json:"revoked,omitempty"`
}

func (app *App) describeLabels(spec pluginhost.Spec, m *sdk.Manifest) described {
	d := described{Manifest: m, Source: string(spec.Source)}
	if spec.Source != pluginhost.SourceInstalled {
		return d
	}
	if p, ok := app.provenances()[spec.Name]; ok {
		d.Source, d.Registry, d.SignedBy = p.label(), p.Registry, p.SignedBy
		if p.Yanked {
			d.Yanked = p.yankedProblem(spec.Version)
		}
		if p.AllRevoked {
			d.Revoked = p.revokedProblem()
		}
	}
	return d
}

func printManifest(app *App, d described, st pluginhost.Status) {
	m := d.Manifest
	fmt.Fprintf(app.Out, "Name:        %s\nVersion:     %s\n", m.Name, m.Version)
	if m.Description != "" {
		fmt.Fprintf(app.Out, "Description: %s\n", m.Description)
	}
	fmt.Fprintf(app.Out, "Categories:  %s\nProtocols:   %s\nSource:      %s\nPath:        %s\n",
		joinCategories(m.Categories), joinInts(m.ProtocolVersions), d.Source, st.Path)
	if d.Yanked != "" {
		fmt.Fprintf(app.Out, "Yanked:      %s\n", d.Yanked)
	}
	if d.Revoked != "" {
		fmt.Fprintf(app.Out, "Revoked:     %s\n", d.Revoked)
	}
	if len(m.Types) > 0 {
		fmt.Fprintln(app.Out, "Types:")
		t := newTable(app.Out, "  CATEGORY", "NAME", "DESCRIPTION")
		for _, ty := range m.Types {
			t.row("  "+ty.Category.String(), ty.Name, ty.Description)
		}
		_ = t.flush() // writes to the command's output; nothing to recover on failure
	}
	if props, ok := m.ConfigSchema["properties"].(map[string]any); ok && len(props) > 0 {
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(app.Out, "Config keys: %s\n", strings.Join(keys, ", "))
	}
}

func newPluginServeCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:    "serve NAME",
		Short:  "Serve a builtin plugin (run by the plugin host, not by hand)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := serveBuiltin(app.Builtins, args[0], args[1:], app.Err); code != 0 {
				return exitError{code: code, err: fmt.Errorf("plugin %s exited with status %d", args[0], code)}
			}
			return nil
		},
	}
}

type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) ExitCode() int { return e.code }
func (e exitError) Unwrap() error { return e.err }

// selfBinary is the palvella executable and its sha256, computed once:
// builtin plugins are this binary re-executed, checked like any plugin. The
// plugin host keeps the file open with its identity, so that launching the
// builtins does not hash it again while it stays the same file.
var selfBinary = sync.OnceValues(func() (selfInfo, error) {
	exe, err := os.Executable()
	if err != nil {
		return selfInfo{}, fmt.Errorf("find the palvella executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	sum, err := pluginhost.SHA256Executable(exe)
	if err != nil {
		return selfInfo{}, fmt.Errorf("hash the palvella executable: %w", err)
	}
	return selfInfo{path: exe, sha256: sum}, nil
})

type selfInfo struct{ path, sha256 string }

// pluginSpecs returns how to launch every builtin and installed plugin. An
// installed plugin takes the place of a builtin of the same name, so a
// first-party plugin can be pinned or upgraded from a registry.
func (app *App) pluginSpecs() ([]pluginhost.Spec, error) {
	installed, err := app.installedSpecs()
	if err != nil {
		return nil, err
	}
	replaced := map[string]bool{}
	for _, s := range installed {
		replaced[s.Name] = true
	}
	var specs []pluginhost.Spec
	for _, b := range app.Builtins {
		if replaced[b.Name] {
			continue
		}
		spec, err := builtinSpec(b)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	return append(specs, installed...), nil
}

func builtinSpec(b Builtin) (pluginhost.Spec, error) {
	self, err := selfBinary()
	if err != nil {
		return pluginhost.Spec{}, err
	}
	return pluginhost.Spec{Name: b.Name, Source: pluginhost.SourceBuiltin, Path: self.path, Args: []string{"plugin", "serve", b.Name},
		SHA256: self.sha256, Version: b.Version, Categories: b.Categories}, nil
}

// resolvePlugin finds a plugin by name, or takes a path to a binary.
func (app *App) resolvePlugin(arg string) (pluginhost.Spec, error) {
	if strings.ContainsRune(arg, os.PathSeparator) {
		path, err := filepath.Abs(arg)
		if err != nil {
			return pluginhost.Spec{}, err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return pluginhost.Spec{}, fmt.Errorf("plugin binary %s: %w", arg, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return pluginhost.Spec{}, fmt.Errorf("plugin binary %s: not an executable file", arg)
		}
		sum, err := pluginhost.SHA256File(path)
		if err != nil {
			return pluginhost.Spec{}, err
		}
		name := strings.ToLower(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
		if !validPluginName(name) {
			name = "plugin"
		}
		return pluginhost.Spec{Name: name, Source: pluginhost.SourcePath, Path: path, SHA256: sum}, nil
	}
	specs, err := app.pluginSpecs()
	if err != nil {
		return pluginhost.Spec{}, err
	}
	var names []string
	for _, s := range specs {
		if s.Name == arg {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return pluginhost.Spec{}, fmt.Errorf("no plugin named %q (known: %s); to describe a binary, give its path, such as ./%s", arg, strings.Join(names, ", "), arg)
}

func validPluginName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func joinCategories(cs []sdk.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ",")
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

// installedSpecs reads the installed plugins from the lock file.
func (app *App) installedSpecs() ([]pluginhost.Spec, error) {
	return installedSpecsFromLock(app.lockPath())
}
