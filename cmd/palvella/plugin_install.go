package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/client"
	"github.com/palvella/palvella/registry/index"
	"github.com/palvella/palvella/registry/lock"
	"github.com/palvella/palvella/registry/resolve"
	"github.com/spf13/cobra"
)

// installRow is what `plugin add` and `plugin upgrade` print with -o json.
type installRow struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Previous string   `json:"previous,omitempty"`
	Source   string   `json:"source"`
	Registry string   `json:"registry,omitempty"`
	Path     string   `json:"path"`
	SHA256   string   `json:"sha256"`
	SignedBy []string `json:"signedBy,omitempty"`
	Notices  []string `json:"notices,omitempty"`
	// Upgraded is false when upgrade found nothing newer.
	Upgraded bool `json:"upgraded"`
	// Error says why upgrade failed for this plugin.
	Error string `json:"error,omitempty"`
}

func rowOf(r *client.Result) installRow {
	return installRow{Name: r.Entry.Name, Version: r.Entry.Version, Previous: r.Previous, Source: r.Entry.Source,
		Registry: r.Entry.Registry, Path: r.Entry.Path, SHA256: r.Entry.SHA256, SignedBy: r.Entry.SignedBy, Notices: r.Notices, Upgraded: true}
}

// isLocalPath reports whether a plugin argument names a file rather than
// a plugin in a registry.
func isLocalPath(arg string) bool {
	return strings.ContainsRune(arg, os.PathSeparator) || strings.ContainsRune(arg, '/') || strings.HasPrefix(arg, ".")
}

// withProgress makes c report download progress on stderr, and only when
// stderr is a terminal and the output is not JSON.
func (app *App) withProgress(c *client.Client, output string) (done func()) {
	f, ok := app.Err.(*os.File)
	if !ok || output == "json" {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	shown := false
	c.OnProgress = func(p client.Progress) {
		shown = true
		pct := int64(100)
		if p.Total > 0 {
			pct = p.Done * 100 / p.Total
		}
		fmt.Fprintf(f, "\rDownloading %s %s: %3d%% (%.1f of %.1f MB)", p.Plugin, p.Version, pct, float64(p.Done)/1e6, float64(p.Total)/1e6)
	}
	return func() {
		if shown {
			fmt.Fprintln(f)
		}
	}
}

func newPluginAddCmd(app *App) *cobra.Command {
	var (
		output                     string
		only                       string
		allowYanked, allowUnsigned bool
		replace                    bool
		describeTimeout            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add NAME[@CONSTRAINT] | ./BINARY",
		Short: "Install a plugin from the configured registries",
		Long: `Install a plugin: read the configured registries, find the one that serves
NAME (first-party names come only from the public registry's root key; a
registry added with --names owns those names; a name several registries may
serve needs --registry, which the lock records and upgrades keep), pick the
highest version that satisfies the constraint,
the trust policy, this platform and the plugin protocols this palvella speaks,
download it, check its size, sha256 and signature, install it under
$PALVELLA_HOME/plugins and record it, with its sha256, in
$PALVELLA_HOME/plugins.lock. The sha256 is checked again at every launch.

Constraints: 1.2.3 (exact), ^1.2, ~1.2, ">=1.0 <2.0", 1.x. Prereleases are
considered only when the constraint names one. Yanked versions are never
picked by a range; pin one exactly and pass --allow-yanked to install it
anyway.

A server running on this home ($PALVELLA_HOME/cli.json names it) applies the
change without a restart: a new plugin is offered to the next pipeline
applied and the next job, and a new version of an installed one serves new
jobs while the old version finishes those it had. See plugin reload.

A path (anything with a slash, such as ./bin/my-plugin) installs a local
binary for development. It carries no signature, so this is refused unless
--allow-unsigned says you trust the file.

Replacing a builtin plugin, or a plugin installed from another source (a
local file, another registry), is refused unless --replace says so.`,
		Example: `  palvella plugin add engine-docker@^1.2
  palvella plugin add engine-acme@~1.0 --registry acme
  palvella plugin add engine-acme@1.0.0 --allow-yanked
  palvella plugin add ./bin/engine-mine --allow-unsigned`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			arg := args[0]
			if isLocalPath(arg) {
				if only != "" || allowYanked {
					return errors.New("--registry and --allow-yanked apply to plugins from registries, not to a local binary")
				}
				c := &client.Client{PluginDir: app.pluginDir(), LockPath: app.lockPath(), StatePath: app.statePath(),
					Protocols: sdk.ProtocolVersions, KeepReplaced: true}
				c.Builtins = app.builtinNames()
				res, err := c.InstallLocal(cmd.Context(), client.LocalRequest{Path: arg, AllowUnsigned: allowUnsigned, DescribeTimeout: describeTimeout, Replace: replace})
				if err != nil {
					if !allowUnsigned {
						return fmt.Errorf("install %s: %w; nothing vouches for a local binary, so installing one needs --allow-unsigned (for development), or publish it to a registry and install it by name", arg, err)
					}
					return fmt.Errorf("install %s: %w", arg, err)
				}
				defer app.applyLive(cmd.Context())
				return app.printInstalled(output, res, "local file "+arg)
			}
			name, constraint, _ := strings.Cut(arg, "@")
			if allowUnsigned {
				return errors.New("--allow-unsigned applies to local binaries only; plugins from registries must be signed by a key the registry's pinned root delegates")
			}
			c, _, err := app.registryClient(only)
			if err != nil {
				return err
			}
			c.KeepReplaced = true // the server may run the version replaced: it deletes it once unused
			done := app.withProgress(c, output)
			res, err := c.Install(cmd.Context(), client.Request{Name: name, Constraint: constraint, AllowYanked: allowYanked, Registry: only, Replace: replace})
			done()
			if err != nil {
				return fmt.Errorf("install %s: %w", arg, err)
			}
			defer app.applyLive(cmd.Context())
			return app.printInstalled(output, res, "registry "+res.Entry.Registry)
		},
	}
	outputFlag(cmd, &output)
	cmd.Flags().StringVar(&only, "registry", "", "install from this configured registry (needed when several may serve the name; recorded in the lock), reading no other")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a builtin plugin, or a plugin installed from another source (a local file or another registry)")
	cmd.Flags().BoolVar(&allowYanked, "allow-yanked", false, "install a yanked version pinned exactly (NAME@1.2.3)")
	cmd.Flags().BoolVar(&allowUnsigned, "allow-unsigned", false, "install a local, unsigned binary (development only)")
	cmd.Flags().DurationVar(&describeTimeout, "describe-timeout", 0, "how long a local binary may take to answer --describe (default 10s)")
	return cmd
}

func (app *App) printInstalled(output string, res *client.Result, from string) error {
	if output == "json" {
		return writeJSON(app.Out, rowOf(res))
	}
	verb := "Installed"
	if res.Previous != "" && res.Previous != res.Entry.Version {
		verb = "Replaced " + res.Previous + " with"
	}
	fmt.Fprintf(app.Out, "%s %s %s from %s.\n  path:   %s\n  sha256: %s\n", verb, res.Entry.Name, res.Entry.Version, from, res.Entry.Path, res.Entry.SHA256)
	if len(res.Entry.SignedBy) > 0 {
		fmt.Fprintf(app.Out, "  signed by: %s\n", strings.Join(res.Entry.SignedBy, ", "))
	}
	for _, n := range res.Notices {
		fmt.Fprintf(app.Out, "Notice: %s\n", n)
	}
	return nil
}

// versionRow is one version in `plugin info`.
type versionRow struct {
	Version   string   `json:"version"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason,omitempty"`
	Protocols []int    `json:"protocolVersions"`
	Platforms []string `json:"platforms"`
	Yanked    string   `json:"yanked,omitempty"`
	Installed bool     `json:"installed,omitempty"`
}

// pluginInfo is `plugin info -o json`.
type pluginInfo struct {
	Name        string       `json:"name"`
	Registry    string       `json:"registry"`
	Description string       `json:"description,omitempty"`
	License     string       `json:"license"`
	Homepage    string       `json:"homepage,omitempty"`
	Official    bool         `json:"official"`
	Categories  []string     `json:"categories"`
	ShadowedIn  []string     `json:"shadowedIn,omitempty"`
	Versions    []versionRow `json:"versions"`
}

func newPluginInfoCmd(app *App) *cobra.Command {
	var output, only string
	cmd := &cobra.Command{
		Use:   "info NAME",
		Short: "Show a plugin's versions in the registries and which can be installed",
		Long: `Show what the registries offer for NAME: the registry that owns the name (the
first in order that lists it), and every version, newest first, with its
status on this machine: "ok" (installable), "yanked", "incompatible" (plugin
protocol or palvella version), "no artifact for this platform", "refused by
policy" or "bad signature". Registries later in the order that also list the
name are shown as shadowed: they are never used for it.`,
		Example: `  palvella plugin info engine-docker
  palvella plugin info engine-docker -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := app.registryClient(only)
			if err != nil {
				return err
			}
			loaded, err := c.Load(cmd.Context())
			if err != nil {
				return err
			}
			info, err := app.infoOf(c, loaded, args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(app.Out, info)
			}
			off := ""
			if info.Official {
				off = " (official)"
			}
			fmt.Fprintf(app.Out, "Name:        %s%s\nRegistry:    %s\nDescription: %s\nLicense:     %s\nCategories:  %s\n",
				info.Name, off, info.Registry, info.Description, info.License, strings.Join(info.Categories, ","))
			if info.Homepage != "" {
				fmt.Fprintf(app.Out, "Homepage:    %s\n", info.Homepage)
			}
			if len(info.ShadowedIn) > 0 {
				fmt.Fprintf(app.Out, "Also listed (ignored) in: %s\n", strings.Join(info.ShadowedIn, ", "))
			}
			t := newTable(app.Out, "VERSION", "STATUS", "PROTOCOLS", "PLATFORMS", "NOTE")
			for _, v := range info.Versions {
				note := v.Reason
				if v.Yanked != "" {
					note = "yanked: " + v.Yanked
				}
				ver := v.Version
				if v.Installed {
					ver += " *"
				}
				t.row(ver, v.Status, joinInts(v.Protocols), strings.Join(v.Platforms, ","), note)
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	cmd.Flags().StringVar(&only, "registry", "", "look in this configured registry only")
	return cmd
}

func (app *App) infoOf(c *client.Client, loaded []client.Loaded, name string) (*pluginInfo, error) {
	owner, p, err := c.Owner(loaded, name, c.Only)
	if err != nil {
		return nil, err
	}
	info := &pluginInfo{Name: p.Name, Registry: owner.Name, Description: p.Description, License: p.License,
		Homepage: p.Homepage, Official: owner.Official(p), Categories: p.Categories}
	for i := range loaded {
		if loaded[i].Name != owner.Name && loaded[i].Index.Lookup(name) != nil {
			info.ShadowedIn = append(info.ShadowedIn, loaded[i].Name)
		}
	}
	lf, err := lock.Load(c.LockPath)
	if err != nil {
		return nil, err
	}
	installed := ""
	if e := lf.Get(name); e != nil && e.Registry == info.Registry {
		installed = e.Version
	}
	now := time.Now()
	for _, v := range sortedVersions(p) {
		row := versionRow{Version: v.Version, Protocols: v.ProtocolVersions, Platforms: []string{}, Installed: v.Version == installed}
		for _, a := range v.Artifacts {
			row.Platforms = append(row.Platforms, a.Platform())
		}
		if v.Yanked != nil {
			row.Yanked = v.Yanked.Reason
		}
		_, err := resolve.Resolve([]resolve.Registry{*owner},
			resolve.Request{Name: name, Constraint: "=" + v.Version, OS: c.OS, Arch: c.Arch, Protocols: c.Protocols, CoreVersion: c.CoreVersion},
			c.Policy, now)
		row.Status = "ok"
		if err != nil {
			row.Status = errorKind(err)
			if row.Yanked == "" {
				row.Reason = err.Error()
			}
		}
		info.Versions = append(info.Versions, row)
	}
	return info, nil
}

// sortedVersions returns a plugin's versions, newest first.
func sortedVersions(p *index.Plugin) []*index.Version {
	out := make([]*index.Version, len(p.Versions))
	for i := range p.Versions {
		out[i] = &p.Versions[i]
	}
	slices.SortStableFunc(out, func(a, b *index.Version) int {
		va, ea := semver.StrictNewVersion(a.Version)
		vb, eb := semver.StrictNewVersion(b.Version)
		if ea != nil || eb != nil {
			return strings.Compare(b.Version, a.Version)
		}
		return vb.Compare(va)
	})
	return out
}

// searchRow is one result of `plugin search`.
type searchRow struct {
	Name        string   `json:"name"`
	Registry    string   `json:"registry"`
	Latest      string   `json:"latest"`
	Official    bool     `json:"official"`
	License     string   `json:"license"`
	Categories  []string `json:"categories"`
	Description string   `json:"description,omitempty"`
}

func newPluginSearchCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "search [TERM]",
		Short: "Search the configured registries for plugins",
		Long: `List plugins whose name, description or category contains TERM (all plugins
without TERM), from the registry that owns each name. LATEST is the newest
version that can be installed here ("-" if none can; see plugin info).`,
		Example: `  palvella plugin search docker
  palvella plugin search engine -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			term := ""
			if len(args) == 1 {
				term = strings.ToLower(args[0])
			}
			c, _, err := app.registryClient("")
			if err != nil {
				return err
			}
			loaded, err := c.Load(cmd.Context())
			if err != nil {
				return err
			}
			rows := []searchRow{}
			now := time.Now()
			for _, l := range loaded {
				for i := range l.Index.Plugins {
					p := &l.Index.Plugins[i]
					// Show a plugin from the registry that serves its name,
					// or from each when several may and none is chosen.
					if o, _, err := c.Owner(loaded, p.Name, ""); err == nil && o.Name != l.Name || err != nil && !errors.Is(err, registry.ErrAmbiguous) {
						continue
					}
					hay := strings.ToLower(p.Name + " " + p.Description + " " + strings.Join(p.Categories, " "))
					if !strings.Contains(hay, term) {
						continue
					}
					row := searchRow{Name: p.Name, Registry: l.Name, Latest: "-", Official: l.Official(p), License: p.License, Categories: p.Categories, Description: p.Description}
					sel, err := resolve.Resolve([]resolve.Registry{l.Registry},
						resolve.Request{Name: p.Name, OS: c.OS, Arch: c.Arch, Protocols: c.Protocols, CoreVersion: c.CoreVersion}, c.Policy, now)
					if err == nil {
						row.Latest = sel.Version.Version
					}
					rows = append(rows, row)
				}
			}
			if output == "json" {
				return writeJSON(app.Out, rows)
			}
			t := newTable(app.Out, "NAME", "LATEST", "REGISTRY", "OFFICIAL", "DESCRIPTION")
			for _, r := range rows {
				off := ""
				if r.Official {
					off = "yes"
				}
				t.row(r.Name, r.Latest, r.Registry, off, r.Description)
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func newPluginUpgradeCmd(app *App) *cobra.Command {
	var output, moveTo string
	cmd := &cobra.Command{
		Use:   "upgrade [NAME]",
		Short: "Upgrade installed plugins within their constraints",
		Long: `Upgrade one installed plugin, or every plugin installed from a registry, to
the newest version allowed by the constraint it was added with (plugin add
NAME@~1.0 stays on 1.0.x). To move beyond the constraint, run plugin add
again with a new one. Plugins installed from a local file are skipped.

Each plugin stays on the registry recorded in the lock; --registry NAME (with
one plugin named) moves it to another registry that may serve it. A plugin
that fails does not stop the others: every failure is reported at the end
and the command exits non-zero.

A server running on this home applies the upgrade without a restart: new jobs
use the new version, jobs in flight finish on the old one, whose files are
deleted once its last process ends.`,
		Example: `  palvella plugin upgrade
  palvella plugin upgrade engine-docker`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			lf, err := lock.Load(app.lockPath())
			if err != nil {
				return err
			}
			var names []string
			if len(args) == 1 {
				names = args
			} else {
				for _, e := range lf.Plugins {
					if e.Source == lock.SourceRegistry {
						names = append(names, e.Name)
					}
				}
			}
			if len(names) == 0 {
				if output == "json" {
					return writeJSON(app.Out, []installRow{})
				}
				fmt.Fprintln(app.Out, "No plugin installed from a registry; nothing to upgrade.")
				return nil
			}
			if moveTo != "" && len(args) != 1 {
				return errors.New("--registry moves one plugin: name it (palvella plugin upgrade NAME --registry " + moveTo + ")")
			}
			c, _, err := app.registryClient("")
			if err != nil {
				return err
			}
			c.KeepReplaced = true
			done := app.withProgress(c, output)
			defer done()
			upgraded := false
			defer func() {
				if upgraded {
					app.applyLive(cmd.Context())
				}
			}()
			rows := []installRow{}
			var failed []string
			for _, name := range names {
				res, err := c.UpgradeFrom(cmd.Context(), name, moveTo)
				if err != nil {
					failed = append(failed, name)
					if output == "json" {
						rows = append(rows, installRow{Name: name, Error: err.Error()})
					} else {
						fmt.Fprintf(app.Out, "Could not upgrade %s: %v\n", name, err)
					}
					continue
				}
				if res == nil {
					e := lf.Get(name)
					row := installRow{Name: name}
					if e != nil {
						row = installRow{Name: name, Version: e.Version, Source: e.Source, Registry: e.Registry, Path: e.Path, SHA256: e.SHA256, SignedBy: e.SignedBy}
					}
					rows = append(rows, row)
					if output != "json" {
						fmt.Fprintf(app.Out, "%s %s is the newest version allowed by its constraint.\n", name, row.Version)
					}
					continue
				}
				rows = append(rows, rowOf(res))
				upgraded = true
				if output != "json" {
					fmt.Fprintf(app.Out, "Upgraded %s %s -> %s (from registry %s).\n", name, res.Previous, res.Entry.Version, res.Entry.Registry)
					for _, n := range res.Notices {
						fmt.Fprintf(app.Out, "Notice: %s\n", n)
					}
				}
			}
			if output == "json" {
				if err := writeJSON(app.Out, rows); err != nil {
					return err
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d plugins could not be upgraded (%s); the others were", len(failed), len(names), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	outputFlag(cmd, &output)
	cmd.Flags().StringVar(&moveTo, "registry", "", "move the named plugin to this configured registry (default: stay on the lock's)")
	return cmd
}

func newPluginRemoveCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Uninstall an installed plugin",
		Long: `Remove an installed plugin: its lock entry first, then its files under
$PALVELLA_HOME/plugins. Builtin plugins are part of the palvella binary and
cannot be removed.

A server running on this home stops offering the plugin at once: jobs that
started with it finish on it, its process stops after the last of them, and
its files are deleted then. A pipeline that needs it fails saying no plugin
provides its type.`,
		Example: `  palvella plugin remove engine-docker`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lf, broken, err := lock.LoadLenient(app.lockPath())
			if err != nil {
				return err
			}
			if lf.Get(args[0]) == nil && !slices.ContainsFunc(broken, func(b lock.Broken) bool { return b.Name == args[0] }) {
				if _, ok := findBuiltin(app.Builtins, args[0]); ok {
					return fmt.Errorf("%s is a builtin plugin, compiled into palvella; it cannot be removed", args[0])
				}
			}
			c := &client.Client{PluginDir: app.pluginDir(), LockPath: app.lockPath(), StatePath: app.statePath(), KeepReplaced: true}
			if err := c.Remove(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("remove %s: %w", args[0], err)
			}
			fmt.Fprintf(app.Out, "Removed %s.\n", args[0])
			app.applyLive(cmd.Context())
			return nil
		},
	}
}

// verifyRow is one plugin in `plugin verify`.
type verifyRow struct {
	Name string `json:"name"`
	Path string `json:"path"`
	OK   bool   `json:"ok"`
	// Status is "ok", "failed" (binary missing or changed), "edited" (the
	// lock disagrees with the binary's manifest or its recorded artifact),
	// "broken" (the lock entry is unusable) or "revoked" (every signer
	// revoked since). A yanked version is "ok" with Yanked set: yanking
	// withdraws a version from new installs, it does not say it was
	// tampered with.
	Status   string   `json:"status"`
	Source   string   `json:"source"`
	SignedBy []string `json:"signedBy,omitempty"`
	// Yanked is the reason the registry gave for yanking this version.
	Yanked  string `json:"yanked,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// versionOf is the version of an installed plugin in the lock ("" when
// none).
func versionOf(name string, app *App) string {
	lf, _, err := lock.LoadLenient(app.lockPath())
	if err != nil {
		return ""
	}
	if e := lf.Get(name); e != nil {
		return e.Version
	}
	return ""
}

func newPluginVerifyCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Re-check every installed plugin against the lock file",
		Long: `Re-hash every installed plugin and compare it with the sha256 recorded in
$PALVELLA_HOME/plugins.lock at install. Exits non-zero if any plugin is
missing or changed; a changed plugin is also refused at launch. Reinstall it
with plugin remove NAME and plugin add NAME. A plugin whose every signing key
was revoked by its registry's root (as learnt at the last read of the
registry) is REVOKED and fails too.

The lock itself is checked: each binary is asked its manifest (--describe)
and its name and version must be the lock's, and the recorded sha256 must be
the artifact's the registry signed (for a binary downloaded as is). A lock
edited by hand is EDITED and fails. An entry that cannot be used at all (it
does not validate, or names an unknown category) is BROKEN and fails;
palvella plugin remove NAME removes it. A version its registry yanked (as
of the last read) passes, shown as "ok (yanked)" with the reason.`,
		Example: `  palvella plugin verify
  palvella plugin verify -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c := &client.Client{PluginDir: app.pluginDir(), LockPath: app.lockPath(), StatePath: app.statePath()}
			checks, verr := c.VerifyDeep(cmd.Context(), 0)
			if checks == nil && verr != nil {
				return fmt.Errorf("verify installed plugins: %w", verr)
			}
			rows := make([]verifyRow, 0, len(checks))
			bad := 0
			prov := app.provenances()
			brokenSpec := map[string]string{}
			if specs, err := app.installedSpecs(); err == nil {
				for _, sp := range specs {
					brokenSpec[sp.Name] = sp.Broken
				}
			}
			for _, ch := range checks {
				p := prov[ch.Name]
				if why := brokenSpec[ch.Name]; why != "" && !ch.Broken {
					ch.Broken, ch.Err = true, errors.New(why)
				}
				r := verifyRow{Name: ch.Name, Path: ch.Path, OK: ch.Err == nil, Status: "ok", Source: p.label(), SignedBy: p.SignedBy}
				if p.Yanked {
					r.Yanked = cmp.Or(p.YankedReason, "yanked")
				}
				switch {
				case ch.Broken:
					r.OK, r.Status, r.Problem = false, "broken", ch.Err.Error()
				case ch.Edited:
					r.Status, r.Problem = "edited", ch.Err.Error()
				case ch.Err != nil:
					r.Status, r.Problem = "failed", ch.Err.Error()
				case p.AllRevoked:
					r.OK, r.Status, r.Problem = false, "revoked", p.revokedProblem()
				case p.Yanked:
					r.Problem = p.yankedProblem(versionOf(ch.Name, app))
				}
				if !r.OK {
					bad++
				}
				rows = append(rows, r)
			}
			if output == "json" {
				if err := writeJSON(app.Out, rows); err != nil {
					return err
				}
			} else if len(rows) == 0 {
				fmt.Fprintln(app.Out, "No plugin is installed.")
			} else {
				t := newTable(app.Out, "NAME", "STATUS", "SOURCE", "PROBLEM")
				for _, r := range rows {
					st := r.Status
					if !r.OK {
						st = strings.ToUpper(st) // FAILED, EDITED, BROKEN, REVOKED
					} else if r.Yanked != "" {
						st = "ok (yanked)"
					}
					t.row(r.Name, st, r.Source, r.Problem)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			if bad > 0 || verr != nil {
				return fmt.Errorf("%d of %d installed plugins failed verification; reinstall them (palvella plugin remove NAME, then palvella plugin add NAME)", max(bad, 1), len(rows))
			}
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// installedSpecsFromLock turns the lock file's entries into launch specs.
// A broken entry (one that does not validate, or names a category this
// palvella does not know) becomes a spec with Broken set: it is listed and
// hosted as failed, never launched, and the other plugins go on. An entry
// too broken to have a name is left out here; plugin verify reports it.
func installedSpecsFromLock(lockPath string) ([]pluginhost.Spec, error) {
	lf, broken, err := lock.LoadLenient(lockPath)
	if err != nil {
		return nil, fmt.Errorf("read plugin lock file: %w", err)
	}
	specs := make([]pluginhost.Spec, 0, len(lf.Plugins)+len(broken))
	for _, e := range lf.Plugins {
		spec := pluginhost.Spec{Name: e.Name, Source: pluginhost.SourceInstalled, Path: e.Path,
			SHA256: e.SHA256, Version: e.Version}
		for _, s := range e.Categories {
			c, err := sdk.ParseCategory(s)
			if err != nil {
				spec.Broken = fmt.Sprintf("its lock entry names the unknown category %q (%v)", s, err)
				continue
			}
			spec.Categories = append(spec.Categories, c)
		}
		if spec.Broken != "" {
			spec.Categories = nil
		}
		specs = append(specs, spec)
	}
	have := map[string]bool{}
	for _, s := range specs {
		have[s.Name] = true
	}
	for _, b := range broken {
		if b.Name != "" && !have[b.Name] {
			have[b.Name] = true
			specs = append(specs, pluginhost.Spec{Name: b.Name, Source: pluginhost.SourceInstalled, Broken: "its lock entry is broken: " + b.Err.Error()})
		}
	}
	return specs, nil
}
