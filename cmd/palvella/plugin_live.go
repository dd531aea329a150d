package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/client"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/server"
	rclient "github.com/palvella/palvella/registry/client"
	"github.com/spf13/cobra"
)

// Live plugins: `plugin add`, `upgrade` and `remove` change the lock file,
// keeping the files of the version they replace, and then tell the server
// of this home ($PALVELLA_HOME/cli.json) to reload; it applies the change
// without a restart and deletes old versions once no process of them runs.
// With no server to tell, the CLI deletes them itself, sparing any a
// process still runs. See docs/design/live-plugins.md.

// homeServer is the server of this home, as its cli.json names it, or nil
// when there is none.
func (app *App) homeServer() (*client.Client, error) {
	path := filepath.Join(app.Home, server.CLIConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var cfg server.CLIConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if cfg.Server == "" {
		return nil, nil
	}
	return client.New(cfg.Server, cfg.Token)
}

// applyLive tells the server of this home that its plugins changed. It
// says on stderr what the server did, or why it did not; with no server
// running it deletes the versions the change left behind.
func (app *App) applyLive(ctx context.Context) {
	c, err := app.homeServer()
	if err != nil {
		fmt.Fprintf(app.Err, "Warning: %v; a server running on %s applies the change when it restarts or on `palvella plugin reload`.\n", err, app.Home)
		return
	}
	if c == nil {
		app.collectUnused()
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := c.ReloadPlugins(rctx)
	var unreachable *client.UnreachableError
	switch {
	case errors.As(err, &unreachable):
		app.collectUnused() // no server runs on this home
	case err != nil:
		fmt.Fprintf(app.Err, "Warning: the server at %s did not apply the change: %v\nIt applies it when it restarts, or on `palvella plugin reload`.\n", c.Server(), err)
	default:
		printReload(app.Err, c.Server(), res)
	}
}

// printReload says what a reload changed and which plugins failed to
// start.
func printReload(w interface{ Write([]byte) (int, error) }, url string, res *api.ReloadResult) {
	if !res.Changed() {
		fmt.Fprintf(w, "The server at %s already runs these plugins.\n", url)
		return
	}
	status := map[string]pluginhost.Status{}
	for _, st := range res.Plugins {
		status[st.Name] = st
	}
	fmt.Fprintf(w, "The server at %s applied the change without a restart:\n", url)
	for _, n := range res.Added {
		fmt.Fprintf(w, "  added    %s %s\n", n, serving(status[n]))
	}
	for _, n := range res.Replaced {
		fmt.Fprintf(w, "  replaced %s %s\n", n, serving(status[n]))
	}
	for _, n := range res.Removed {
		st, draining := status[n]
		if draining {
			fmt.Fprintf(w, "  removed  %s: its process stops once %s\n", n, finishing(st.Instances))
		} else {
			fmt.Fprintf(w, "  removed  %s\n", n)
		}
	}
	for _, n := range append(append([]string(nil), res.Added...), res.Replaced...) {
		if st := status[n]; st.State == pluginhost.StateFailed {
			first, _, _ := strings.Cut(st.LastError, "\n")
			fmt.Fprintf(w, "Warning: %s does not start: %s\nJobs that need it fail naming it until it is fixed (palvella plugin add again, or remove it).\n", n, first)
		}
	}
}

// serving says what a plugin's instances serve: "now serves 1.1.0 (1.0.0
// drains 2 jobs)".
func serving(st pluginhost.Status) string {
	var cur string
	var old []string
	for _, in := range st.Instances {
		if in.State == pluginhost.InstanceServing {
			cur = in.Version
		} else {
			old = append(old, fmt.Sprintf("%s finishes the %s it had", in.Version, holding(in)))
		}
	}
	if cur == "" {
		cur = st.Version
	}
	out := "now serves " + cur
	if st.State == pluginhost.StateFailed {
		out = "(" + cur + ") failed to start"
	}
	if len(old) > 0 {
		out += "; " + strings.Join(old, ", ")
	}
	return out
}

// holding says what holds a draining instance: "1 job", "2 jobs and 1
// call".
func holding(in pluginhost.Instance) string {
	switch {
	case in.Calls == 0:
		return plural(in.Leases, "job", "jobs")
	case in.Leases == 0:
		return plural(in.Calls, "call", "calls")
	}
	return plural(in.Leases, "job", "jobs") + " and " + plural(in.Calls, "call", "calls")
}

// finishing says when draining instances stop: "the 1 job started on it
// ends".
func finishing(ins []pluginhost.Instance) string {
	var in pluginhost.Instance
	for _, i := range ins {
		in.Leases += i.Leases
		in.Calls += i.Calls
	}
	if in.Leases+in.Calls == 1 {
		return "the " + holding(in) + " started on it ends"
	}
	return "the " + holding(in) + " started on it end"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// collectPlugins is the server's Config.CollectPlugins: it deletes the
// installed versions that neither the lock, nor the server (inUse), nor a
// process on this machine uses.
func (app *App) collectPlugins(log func(msg string, args ...any)) func(inUse []string) {
	return func(inUse []string) {
		removed, err := app.collect(inUse)
		for _, dir := range removed {
			log("deleted a plugin version no longer used", "dir", dir)
		}
		if err != nil {
			log("could not delete unused plugin versions", "error", err)
		}
	}
}

// collectUnused deletes the versions no process uses, when no server runs.
func (app *App) collectUnused() {
	if _, err := app.collect(nil); err != nil {
		fmt.Fprintf(app.Err, "Warning: %v\n", err)
	}
}

func (app *App) collect(inUse []string) ([]string, error) {
	running := runningExecutables()
	c := &rclient.Client{PluginDir: app.pluginDir(), LockPath: app.lockPath(), StatePath: app.statePath()}
	return c.Collect(func(dir string) bool {
		for _, p := range append(inUse, running...) {
			if rel, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(rel, "..") {
				return true
			}
		}
		return false
	})
}

// runningExecutables lists the executables of the processes this user
// can see (Linux; elsewhere none), so that a binary a process still runs
// is never deleted.
func runningExecutables() []string {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", p.Name(), "exe"))
		if err != nil {
			continue
		}
		out = append(out, strings.TrimSuffix(exe, " (deleted)"))
	}
	return out
}

func newPluginReloadCmd(app *App) *cobra.Command {
	var (
		r      remote
		output string
	)
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make a running server apply the plugins installed, upgraded or removed",
		Long: `Ask a running server to re-read the plugins it hosts (its builtins and
$PALVELLA_HOME/plugins.lock) and apply the changes without a restart:
added plugins start, an upgraded plugin serves new jobs while its old version
finishes the jobs that started on it, and a removed plugin stops after its
last job. Needs an admin token.

plugin add, upgrade and remove do this by themselves for the server of this
home (the one $PALVELLA_HOME/cli.json names); use reload for a server they
cannot reach that way, such as one listening beyond loopback.`,
		Example: `  palvella plugin reload
  palvella plugin reload --server https://ci.example.com:7700 --token $ADMIN_TOKEN -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(&r, output)
			if err != nil {
				return err
			}
			res, err := c.ReloadPlugins(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, res)
			}
			printReload(app.Out, c.Server(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&r.server, "server", "", "URL of the Palvella server (env PALVELLA_SERVER, else cli.json, else "+DefaultServer+")")
	cmd.Flags().StringVar(&r.token, "token", "", "API token of an admin (env PALVELLA_TOKEN, else cli.json)")
	cmd.Flags().StringVar(&r.caCert, "ca-cert", "", "PEM file of certificate authorities to trust for an https:// server (env "+CACertEnv+")")
	outputFlag(cmd, &output)
	return cmd
}

// instancesOf returns what the server of this home runs, by plugin name;
// nil when no server answers.
func (app *App) instancesOf(ctx context.Context) map[string]pluginhost.Status {
	c, err := app.homeServer()
	if err != nil || c == nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sts, err := c.Plugins(lctx)
	if err != nil {
		return nil
	}
	out := map[string]pluginhost.Status{}
	for _, st := range sts {
		out[st.Name] = st
	}
	return out
}

// runningColumn is the RUNNING cell of plugin list: each instance's
// version, pid and, when draining, how many jobs it still serves.
func runningColumn(ins []pluginhost.Instance) string {
	if len(ins) == 0 {
		return "-"
	}
	parts := make([]string, len(ins))
	for i, in := range ins {
		parts[i] = fmt.Sprintf("%s (pid %d)", in.Version, in.PID)
		if in.State == pluginhost.InstanceDraining {
			parts[i] = fmt.Sprintf("%s draining (pid %d, %s)", in.Version, in.PID, holding(in))
		}
	}
	return strings.Join(parts, ", ")
}

// withInstances adds to rows what the server runs: each plugin's
// instances, and a row for each removed plugin still draining.
func withInstances(rows []pluginRow, running map[string]pluginhost.Status) []pluginRow {
	listed := map[string]bool{}
	for i := range rows {
		listed[rows[i].Name] = true
		if st, ok := running[rows[i].Name]; ok {
			rows[i].Instances = st.Instances
		}
	}
	for _, name := range slices.Sorted(maps.Keys(running)) {
		st := running[name]
		if listed[name] || len(st.Instances) == 0 {
			continue
		}
		rows = append(rows, pluginRow{Name: st.Name, Version: st.Version, Categories: st.Categories, Source: string(st.Source),
			Path: st.Path, State: string(pluginhost.StateDraining), Problem: "removed; its process stops once the jobs that started on it end",
			Instances: st.Instances})
	}
	return rows
}
