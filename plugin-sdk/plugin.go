package sdk

import (
	"context"
	"io"
)

// Plugin is what every plugin implements, whatever its categories.
type Plugin interface {
	// Describe returns the plugin's manifest. It must work before Configure
	// and must not depend on configuration.
	Describe(ctx context.Context) (*Manifest, error)
	// Configure hands the plugin its configuration, validated against the
	// manifest's ConfigSchema by the core. It may be called again with a new
	// configuration. Problems with the configuration are returned as
	// diagnostics; the error is for failures of the plugin itself.
	Configure(ctx context.Context, req *ConfigureRequest) (*ConfigureResponse, error)
}

// Manifest says what a plugin is.
type Manifest struct {
	Name             string         `json:"name"`
	Version          string         `json:"version"`
	Description      string         `json:"description,omitempty"`
	Categories       []Category     `json:"categories"`
	ProtocolVersions []int          `json:"protocolVersions"`
	ConfigSchema     map[string]any `json:"configSchema,omitempty"`
	Types            []TypeInfo     `json:"types,omitempty"`
}

// Provides reports whether the manifest lists the category.
func (m *Manifest) Provides(c Category) bool {
	for _, have := range m.Categories {
		if have == c {
			return true
		}
	}
	return false
}

// TypesOf returns the types of one category that the plugin provides.
func (m *Manifest) TypesOf(c Category) []TypeInfo {
	var out []TypeInfo
	for _, t := range m.Types {
		if t.Category == c {
			out = append(out, t)
		}
	}
	return out
}

// TypeInfo is a type a plugin provides: an action type, a job type or an
// engine type, with the JSON Schema of its parameters.
type TypeInfo struct {
	Category     Category       `json:"category"`
	Name         string         `json:"name"`
	Description  string         `json:"description,omitempty"`
	ParamsSchema map[string]any `json:"paramsSchema,omitempty"`
}

// ConfigureRequest carries a plugin's configuration.
type ConfigureRequest struct {
	// Config is the plugin's configuration, decoded from JSON.
	Config map[string]any
	// Host reaches the services the core offers back to the plugin. It is
	// nil when the host offers none (as in `--describe`).
	Host Host
}

// ConfigureResponse answers Configure.
type ConfigureResponse struct {
	Diagnostics []Diagnostic
}

// Severity of a diagnostic.
type Severity int

// Severities.
const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	}
	return "unspecified"
}

// Diagnostic is a problem a person can act on, about one field of the input.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail,omitempty"`
	// Field is the path of the field, such as "config.shell".
	Field string `json:"field,omitempty"`
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(diags []Diagnostic) bool {
	for _, d := range diags {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// LogLevel of a line sent to the host's log.
type LogLevel int

// Log levels.
const (
	LogTrace LogLevel = iota + 1
	LogDebug
	LogInfo
	LogWarn
	LogError
)

// Host is the set of services the core offers back to a plugin through the
// go-plugin broker. Calls that concern an execution (storage, exec) must use
// the context the core passed to the plugin's method, which carries the
// execution's identity.
type Host interface {
	// Log writes a line into the core's log, tagged with the plugin's name.
	Log(ctx context.Context, level LogLevel, msg string, fields map[string]string) error
	// ReadCredential returns one value of a credential the plugin is allowed
	// to read. An empty key reads "value".
	ReadCredential(ctx context.Context, name, key string) ([]byte, error)
	// PutObject stores an object under key in the storage scope of the
	// current execution.
	PutObject(ctx context.Context, key string, r io.Reader) error
	// GetObject reads an object of the current execution's storage scope.
	GetObject(ctx context.Context, key string) (io.ReadCloser, error)
	// Exec runs a command on the engine of the current job, streaming its
	// output to out.
	Exec(ctx context.Context, req *HostExecRequest, out func(stream string, data []byte)) (*HostExecResult, error)
}

// HostExecRequest is a command to run on the current job's engine.
type HostExecRequest struct {
	Shell   []string
	Script  string
	Command []string
	Env     map[string]string
	Workdir string
	// FilesOut are paths relative to the workspace to read back after the
	// command ends (small files: they travel in one message).
	FilesOut []string
}

// HostExecResult is what a command ended with.
type HostExecResult struct {
	ExitCode  int
	TimedOut  bool
	Cancelled bool
	// FilesOut holds the requested files that existed, by path.
	FilesOut map[string][]byte
}
