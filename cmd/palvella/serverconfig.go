package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/palvella/palvella/core/config"
	"github.com/palvella/palvella/core/expr"
	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	"github.com/palvella/palvella/core/server"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// configEnv names the configuration file when --config is not given.
const configEnv = "PALVELLA_CONFIG"

// notSettings are the server command's flags that the configuration file
// and PALVELLA_* variables do not set.
var notSettings = []string{"config", "check-config", "home", "help"}

// settingEnv is the environment variable of a flag: --shutdown-grace is
// PALVELLA_SHUTDOWN_GRACE.
func settingEnv(flag string) string {
	return "PALVELLA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// loadServerConfig reads the configuration: --config, else
// PALVELLA_CONFIG, else $PALVELLA_HOME/palvella.yaml if it exists.
func loadServerConfig(home, flagPath string) (*config.File, error) {
	path, required := flagPath, true
	if path == "" {
		path = os.Getenv(configEnv)
	}
	if path == "" {
		path, required = filepath.Join(home, config.FileName), false
	}
	return config.Load(path, required)
}

// applySettings gives every flag not set on the command line its value
// from the environment (PALVELLA_*) or, failing that, the file.
func applySettings(flags *pflag.FlagSet, file *config.File) error {
	var errs []error
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed || slices.Contains(notSettings, f.Name) {
			return
		}
		env := settingEnv(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := flags.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s: %v", env, err))
			}
			return
		}
		if v, ok := file.Server[f.Name]; ok {
			if err := flags.Set(f.Name, v); err != nil {
				errs = append(errs, file.Errorf("server."+strings.ReplaceAll(f.Name, "-", "_"), "%v", err))
			}
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// serverPlugins applies the configuration to the builtin and installed
// plugins: each single-instance category gets the plugin chosen, or the
// builtin of that category; plugins get the configuration and environment
// the file gives them over their defaults. Plugins that serve only a
// single-instance category they were not chosen for are not hosted.
func (app *App) serverPlugins(file *config.File) ([]pluginhost.Spec, map[sdk.Category]string, string, error) {
	specs, err := app.pluginSpecs()
	if err != nil {
		return nil, nil, "", err
	}
	byName := map[string]int{}
	for i := range specs {
		byName[specs[i].Name] = i
		if b, ok := findBuiltin(app.Builtins, specs[i].Name); ok && b.Defaults != nil {
			cfg := b.Defaults(app.Home)
			maps.Copy(cfg, specs[i].Config)
			specs[i].Config = cfg
		}
	}
	var errs []error
	settle := func(path string, p config.Plugin) {
		i, ok := byName[p.Name]
		if !ok {
			hint := suggestName(p.Name, specs)
			if hint == "" {
				hint = fmt.Sprintf("; install it with `palvella plugin add %s`", p.Name)
			}
			errs = append(errs, file.Errorf(path, "no plugin %q is builtin or installed%s", p.Name, hint))
			return
		}
		if len(p.Config) > 0 {
			cfg := maps.Clone(specs[i].Config)
			if cfg == nil {
				cfg = map[string]any{}
			}
			maps.Copy(cfg, p.Config)
			specs[i].Config = cfg
		}
		if len(p.Env) > 0 {
			env := maps.Clone(specs[i].Env)
			if env == nil {
				env = map[string]string{}
			}
			maps.Copy(env, p.Env)
			specs[i].Env = env
		}
	}
	choices := map[sdk.Category]string{}
	for _, c := range config.Singletons {
		if p, ok := file.Choices[c]; ok {
			settle(c.String()+".plugin", p)
			if i, found := byName[p.Name]; found && len(specs[i].Categories) > 0 && !slices.Contains(specs[i].Categories, c) {
				errs = append(errs, file.Errorf(c.String()+".plugin", "%q is not a %s plugin (it provides %s)", p.Name, c, categoryNames(specs[i].Categories)))
			}
			choices[c] = p.Name
			continue
		}
		for _, b := range app.Builtins {
			if slices.Contains(b.Categories, c) {
				choices[c] = b.Name
				break
			}
		}
	}
	names := slices.Sorted(maps.Keys(file.Plugins))
	for _, n := range names {
		settle("plugins."+n, file.Plugins[n])
	}
	if len(errs) > 0 {
		return nil, nil, "", errors.Join(errs...)
	}
	chosen := map[string]bool{}
	for _, n := range choices {
		chosen[n] = true
	}
	var hosted []pluginhost.Spec
	for _, s := range specs {
		if chosen[s.Name] || len(s.Categories) == 0 || slices.ContainsFunc(s.Categories, func(c sdk.Category) bool { return !slices.Contains(config.Singletons, c) }) {
			hosted = append(hosted, s)
		}
	}
	secretKey := ""
	if n := choices[sdk.CategoryCredential]; n != "" {
		if b, ok := findBuiltin(app.Builtins, n); ok && b.SecretKey {
			secretKey = n
		}
	}
	return hosted, choices, secretKey, nil
}

// serverEngines are the configuration's named engines for the
// orchestrator, and the default one ("" without any: the orchestrator's
// own default, local).
func serverEngines(file *config.File) ([]orchestrator.Engine, string) {
	if len(file.Engines) == 0 {
		return nil, ""
	}
	out := make([]orchestrator.Engine, len(file.Engines))
	for i, e := range file.Engines {
		out[i] = orchestrator.Engine{Name: e.Name, Type: e.Type, Params: e.Params, Setup: e.Setup, Teardown: e.Teardown}
	}
	return out, file.Default()
}

// configureServer fills cfg from the flags, the environment and the
// configuration file.
func (app *App) configureServer(cmd *cobra.Command, cfg *server.Config, configPath string) (*config.File, error) {
	file, err := loadServerConfig(app.Home, configPath)
	if err != nil {
		return nil, err
	}
	if err := applySettings(cmd.Flags(), file); err != nil {
		return nil, err
	}
	// --database PLUGIN (or PALVELLA_DATABASE) and the like choose a
	// category's plugin over the file; the file's configuration of that
	// category stays only when it names the same plugin.
	for _, c := range config.Singletons {
		name, _ := cmd.Flags().GetString(c.String())
		if name == "" || file.Choices[c].Name == name {
			continue
		}
		if file.Choices == nil {
			file.Choices = map[sdk.Category]config.Plugin{}
		}
		file.Choices[c] = config.Plugin{Name: name}
	}
	specs, choices, secretKey, err := app.serverPlugins(file)
	if err != nil {
		return nil, err
	}
	cfg.Home, cfg.Plugins, cfg.Choices, cfg.SecretKeyPlugin = app.Home, specs, choices, secretKey
	cfg.Engines, cfg.DefaultEngine = serverEngines(file)
	cfg.ConfigFile = file
	return file, nil
}

// printConfig tells what a configuration selects, for --check-config.
func printConfig(w io.Writer, file *config.File, cfg *server.Config) {
	src := file.Path
	if src == "" {
		src = "none (the defaults)"
	}
	fmt.Fprintf(w, "Configuration: %s\n", src)
	fmt.Fprintf(w, "Listen: %s  Workers: %d\n", cfg.Listen, cfg.Workers)
	for _, c := range config.Singletons {
		fmt.Fprintf(w, "%-15s %s\n", c.String()+":", cfg.Choices[c])
	}
	var others []string
	for _, s := range cfg.Plugins {
		if !slices.Contains(slices.Collect(maps.Values(cfg.Choices)), s.Name) {
			others = append(others, s.Name)
		}
	}
	fmt.Fprintf(w, "%-15s %s\n", "plugins:", strings.Join(others, ", "))
	if len(cfg.Engines) == 0 {
		fmt.Fprintf(w, "%-15s local (type local, the default)\n", "engines:")
	}
	for i, e := range cfg.Engines {
		label := ""
		if i == 0 {
			label = "engines:"
		}
		def := ""
		if e.Name == cfg.DefaultEngine {
			def = ", the default"
		}
		fmt.Fprintf(w, "%-15s %s (type %s%s; %d setup and %d teardown actions)\n", label, e.Name, e.Type, def, len(e.Setup), len(e.Teardown))
	}
	fmt.Fprintln(w, "The configuration is valid. Each plugin's configuration is checked against its schema when it launches, and named engines' types and parameters when the server starts.")
}

func categoryNames(cs []sdk.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

func suggestName(name string, specs []pluginhost.Spec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	if s := expr.Suggest(name, names); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}
