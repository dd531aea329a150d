package wire

import "github.com/palvella/palvella/plugin-sdk/types"

// ReloadResult says what a reload changed, by plugin name, and the
// plugins' state after it: a plugin added or upgraded is started by the
// reload, so one that cannot start shows it in its state and lastError.
type ReloadResult struct {
	SyncResult
	Plugins []PluginStatus `json:"plugins"`
}

// PluginSource is where a plugin comes from.
type PluginSource string

// Plugin sources.
const (
	// SourceBuiltin plugins are compiled into the palvella binary.
	SourceBuiltin PluginSource = "builtin"
	// SourceInstalled plugins were installed from a registry (or locally)
	// and are recorded in the lock file.
	SourceInstalled PluginSource = "installed"
	// SourcePath plugins are binaries named on the command line, as in
	// `palvella plugin describe ./bin/my-plugin`.
	SourcePath PluginSource = "path"
)

// PluginState is the state of a plugin's process.
type PluginState string

// Plugin states.
const (
	StateStopped    PluginState = "stopped"
	StateStarting   PluginState = "starting"
	StateRunning    PluginState = "running"
	StateRestarting PluginState = "restarting"
	StateFailed     PluginState = "failed"
	// StateDraining is a plugin removed while jobs used it: its process
	// serves them and stops when the last is done.
	StateDraining PluginState = "draining"
)

// PluginStatus is what the API and CLI show of a plugin.
type PluginStatus struct {
	Name       string           `json:"name"`
	Source     PluginSource     `json:"source"`
	Version    string           `json:"version,omitempty"`
	Categories []types.Category `json:"categories"`
	Path       string           `json:"path"`
	State      PluginState      `json:"state"`
	PID        int              `json:"pid,omitempty"`
	Protocol   int              `json:"protocol,omitempty"`
	Restarts   int              `json:"restarts"`
	LastError  string           `json:"lastError,omitempty"`
	// Instances are the plugin's running processes: the one serving new
	// work, and the ones of replaced versions draining the work they
	// already had. Empty when no process runs.
	Instances []PluginInstance `json:"instances"`
}

// InstanceState is whether a plugin's process takes new work.
type InstanceState string

// Instance states.
const (
	// InstanceServing takes new work.
	InstanceServing InstanceState = "serving"
	// InstanceDraining belongs to a replaced or removed version: it serves
	// the work it had and stops when that is done.
	InstanceDraining InstanceState = "draining"
)

// PluginInstance is one running process of a plugin.
type PluginInstance struct {
	Version string        `json:"version"`
	State   InstanceState `json:"state"`
	PID     int           `json:"pid,omitempty"`
	// Leases counts the leases holding it (each job running holds one);
	// Calls the calls in flight on it.
	Leases int    `json:"leases"`
	Calls  int    `json:"calls"`
	Path   string `json:"path"`
}

// SyncResult says what a change of the plugins did, by plugin name.
type SyncResult struct {
	Added    []string `json:"added"`
	Replaced []string `json:"replaced"`
	Removed  []string `json:"removed"`
}

// Changed reports whether anything changed.
func (r *SyncResult) Changed() bool {
	return len(r.Added)+len(r.Replaced)+len(r.Removed) > 0
}
