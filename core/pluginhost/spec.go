package pluginhost

import (
	"fmt"
	"github.com/palvella/palvella/core/api/wire"
	"regexp"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Source says where a plugin comes from.
type Source = wire.PluginSource

// Plugin sources.
const (
	// SourceBuiltin plugins are compiled into the palvella binary.
	SourceBuiltin = wire.SourceBuiltin
	// SourceInstalled plugins were installed from a registry (or locally)
	// and are recorded in the lock file.
	SourceInstalled = wire.SourceInstalled
	// SourcePath plugins are binaries named on the command line, as in
	// `palvella plugin describe ./bin/my-plugin`.
	SourcePath = wire.SourcePath
)

// Spec says how to launch one plugin.
type Spec struct {
	// Name is unique among the manager's plugins.
	Name   string
	Source Source
	// Path of the executable, and the arguments to run it with.
	Path string
	Args []string
	// SHA256 is the hex sha256 the binary must have at every launch.
	SHA256 string
	// Env is the environment the plugin is configured to get, on top of a
	// minimal one (PATH, HOME, TMPDIR, LANG). Nothing else of the core's
	// environment reaches a plugin.
	Env map[string]string
	// Config is sent with Configure after every launch.
	Config map[string]any
	// Version and Categories are what the installer or the builtin table
	// recorded; the plugin's own manifest is authoritative once launched.
	Version    string
	Categories []sdk.Category
	// Broken, when set, says why the plugin cannot be launched (its lock
	// entry names an unknown category, say). Such a plugin is hosted as
	// failed with this reason and never started, so one broken plugin does
	// not stop the others or the server.
	Broken string
}

var (
	reName   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	reSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func (s *Spec) validate() error {
	if !reName.MatchString(s.Name) {
		return fmt.Errorf("plugin name %q: must be 1-63 lowercase letters, digits, '-' or '_'", s.Name)
	}
	if s.Path == "" {
		return fmt.Errorf("plugin %q: path is empty", s.Name)
	}
	if s.Broken == "" && !reSHA256.MatchString(s.SHA256) {
		return fmt.Errorf("plugin %q: sha256 must be 64 lowercase hex digits; a plugin is never launched without a checksum", s.Name)
	}
	return nil
}
