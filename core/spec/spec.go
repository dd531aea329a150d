// Package spec parses and validates pipeline files (apiVersion
// palvella.dev/v1, kind Pipeline), in YAML or JSON.
//
// [Parse] reads a file, checks it against the published JSON Schema
// ([Schema]) and decodes it into a [Pipeline] with defaults applied.
// [Pipeline.Validate] checks what a schema cannot: unique names, requires
// and their cycles, expressions, known action and job types, durations,
// cron expressions, trigger rules and param defaults. [Load] does both.
// Every problem is reported, each naming the file, the line and the field
// path: pipeline.yaml:14: spec.jobs[1].requires[0]: unknown job "buidl"
// (did you mean "build"?).
package spec

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// APIVersion and Kind are the only values a pipeline file may declare.
const (
	APIVersion = "palvella.dev/v1"
	Kind       = "Pipeline"
)

// DefaultNamespace is the namespace of a pipeline that names none.
const DefaultNamespace = "default"

// Pipeline is a parsed pipeline file.
type Pipeline struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// file and lines place fields in the source for error messages.
	file  string
	lines map[string]int
}

// Metadata names a pipeline.
type Metadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Spec is what a pipeline does.
type Spec struct {
	Params []Param `json:"params,omitempty"`
	// Engine is the default engine of the jobs; nil means the server's
	// default engine.
	Engine   *Engine          `json:"engine,omitempty"`
	Env      map[string]Value `json:"env,omitempty"`
	Triggers []Trigger        `json:"triggers,omitempty"`
	Jobs     []Job            `json:"jobs"`
	// Timeout bounds a whole run; empty means no limit.
	Timeout Duration `json:"timeout,omitempty"`
	// Concurrency is the most runs of the pipeline that run at once; 0
	// means no limit.
	Concurrency int `json:"concurrency,omitempty"`
}

// Param types.
const (
	TypeString  = "string"
	TypeBoolean = "boolean"
	TypeNumber  = "number"
	TypeList    = "list"
	TypeObject  = "object"
)

// Param is a typed run parameter.
type Param struct {
	Name string `json:"name"`
	// Type is string (the default), boolean, number, list or object.
	Type string `json:"type"`
	// Default is used when a run does not give the param; nil for none.
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
	// Required params must be given to every run and have no default.
	Required bool `json:"required,omitempty"`
}

// Engine selects where a job's commands execute. Written as a name
// (local) or as {type: docker, image: ..., other options}.
type Engine struct {
	Type  string `json:"type"`
	Image string `json:"image,omitempty"`
	// Options are the engine's other settings.
	Options map[string]any `json:"-"`
}

// Value is a string, or a reference to a credential whose value the
// server reads when it needs it.
type Value struct {
	Value          string `json:"-"`
	FromCredential string `json:"from_credential,omitempty"`
}

// Trigger types.
const (
	TriggerWebhook  = "webhook"
	TriggerInterval = "interval"
	TriggerCron     = "cron"
)

// Trigger starts runs of the pipeline.
type Trigger struct {
	// Type is webhook, interval or cron.
	Type string `json:"type"`
	Name string `json:"name"`
	// Secret is the HMAC key of a webhook.
	Secret *Value `json:"secret,omitempty"`
	// Every is the period of an interval trigger.
	Every Duration `json:"every,omitempty"`
	// Expression is the schedule of a cron trigger (five fields or a
	// descriptor such as @hourly).
	Expression string `json:"expression,omitempty"`
	// Timezone is the IANA zone a cron expression is read in (UTC when
	// empty).
	Timezone string `json:"timezone,omitempty"`
	// Params are run params, as strings that may hold ${{ ... }} over the
	// trigger (trigger.payload...).
	Params map[string]string `json:"params,omitempty"`
}

// When values of a job.
const (
	WhenSuccess = "success"
	WhenFailure = "failure"
	WhenAlways  = "always"
)

// Job is a unit of work scheduled on one engine: a list of actions, or a
// job type from a job plugin (uses) with its arguments (with).
type Job struct {
	Name     string   `json:"name"`
	Requires []string `json:"requires,omitempty"`
	// When is success (the default), failure or always.
	When string `json:"when"`
	// If is an expression; false skips the job.
	If      string         `json:"if,omitempty"`
	Engine  *Engine        `json:"engine,omitempty"`
	Params  map[string]any `json:"params,omitempty"`
	Uses    string         `json:"uses,omitempty"`
	With    map[string]any `json:"with,omitempty"`
	Actions []Action       `json:"actions,omitempty"`
	Storage Storage        `json:"storage"`
	Timeout Duration       `json:"timeout,omitempty"`
	Retries int            `json:"retries,omitempty"`
	// RunsOn are the labels a worker must have, each with its value, for
	// the job to run on it (os, arch, platform, and a worker's own
	// --label k=v). None: any worker.
	RunsOn map[string]string `json:"runs_on,omitempty"`
}

// Storage lists the workspace paths a job gets before its actions and
// puts after them.
type Storage struct {
	Get []StorageEntry `json:"get,omitempty"`
	Put []StorageEntry `json:"put,omitempty"`
}

// Storage scopes.
const (
	ScopeRun      = "run"
	ScopePipeline = "pipeline"
)

// StorageEntry is a workspace path and the scope it is kept in. Written
// as a path, or {path: P, scope: pipeline}.
type StorageEntry struct {
	Path  string `json:"path"`
	Scope string `json:"scope"`
}

// Outcomes of on_success and on_failure.
const (
	OutcomeContinue = "continue"
	OutcomeSucceed  = "succeed"
	OutcomeFail     = "fail"
)

// Action is one step of a job. Type is run when Run is set and no type
// is given; the standard types are run, approval, match, compare, notify
// and fail; plugin/type names a plugin's action type. Fields not listed
// here are kept in Params for plugin types.
type Action struct {
	Name      string           `json:"name"`
	Type      string           `json:"type,omitempty"`
	If        string           `json:"if,omitempty"`
	Run       string           `json:"run,omitempty"`
	Shell     string           `json:"shell,omitempty"`
	Env       map[string]Value `json:"env,omitempty"`
	Input     string           `json:"input,omitempty"`
	Pattern   string           `json:"pattern,omitempty"`
	Expr      string           `json:"expr,omitempty"`
	URL       string           `json:"url,omitempty"`
	Message   string           `json:"message,omitempty"`
	Format    string           `json:"format,omitempty"`
	OnSuccess string           `json:"on_success"`
	OnFailure string           `json:"on_failure"`
	Timeout   Duration         `json:"timeout,omitempty"`
	// Params are the action's other fields, for plugin types.
	Params map[string]any `json:"-"`
}

// Duration is a Go duration string such as 90s or 1h30m, kept in the
// normalized form time.Duration.String prints once parsed.
type Duration string

// Value returns the duration, 0 when it is empty or invalid.
func (d Duration) Value() time.Duration {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0
	}
	return v
}

// Job returns the job named name, or nil.
func (s *Spec) Job(name string) *Job {
	for i := range s.Jobs {
		if s.Jobs[i].Name == name {
			return &s.Jobs[i]
		}
	}
	return nil
}

// Param returns the param named name, or nil.
func (s *Spec) Param(name string) *Param {
	for i := range s.Params {
		if s.Params[i].Name == name {
			return &s.Params[i]
		}
	}
	return nil
}

// ActionParams returns the params an action plugin receives for a: the
// fields of its type (run, shell, input, pattern, expr, url, message,
// format, as they are written, before interpolation) and its plugin
// params.
func (a *Action) ActionParams() map[string]any {
	out := maps.Clone(a.Params)
	if out == nil {
		out = map[string]any{}
	}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set("run", a.Run)
	set("shell", a.Shell)
	set("pattern", a.Pattern)
	set("expr", a.Expr)
	set("message", a.Message)
	set("format", a.Format)
	set("input", a.Input)
	set("url", a.URL)
	return out
}

// MarshalJSON writes an engine as an object with its options inline.
func (e Engine) MarshalJSON() ([]byte, error) {
	m := maps.Clone(e.Options)
	if m == nil {
		m = map[string]any{}
	}
	m["type"] = e.Type
	if e.Image != "" {
		m["image"] = e.Image
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads an engine name or object.
func (e *Engine) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*e = Engine{Type: name}
		return nil
	}
	var m map[string]any
	if err := unmarshalNumbers(b, &m); err != nil {
		return err
	}
	*e = Engine{}
	e.Type, _ = m["type"].(string)
	e.Image, _ = m["image"].(string)
	delete(m, "type")
	delete(m, "image")
	if len(m) > 0 {
		e.Options = m
	}
	return nil
}

// MarshalJSON writes a value as a string or {from_credential: NAME}.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.FromCredential != "" {
		return json.Marshal(map[string]string{"from_credential": v.FromCredential})
	}
	return json.Marshal(v.Value)
}

// UnmarshalJSON reads a string, a number, a boolean or
// {from_credential: NAME}.
func (v *Value) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if json.Unmarshal(b, &m) == nil {
		*v = Value{FromCredential: m["from_credential"]}
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		*v = Value{Value: s}
		return nil
	}
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*v = Value{Value: string(raw)}
	return nil
}

// UnmarshalJSON reads a path or {path, scope}.
func (s *StorageEntry) UnmarshalJSON(b []byte) error {
	var p string
	if json.Unmarshal(b, &p) == nil {
		*s = StorageEntry{Path: p}
		return nil
	}
	type plain StorageEntry
	return json.Unmarshal(b, (*plain)(s))
}

// actionFields are the JSON names of Action's typed fields.
var actionFields = []string{"name", "type", "if", "run", "shell", "env", "input", "pattern", "expr", "url",
	"message", "format", "on_success", "on_failure", "timeout"}

// MarshalJSON writes an action with its plugin params inline.
func (a Action) MarshalJSON() ([]byte, error) {
	type plain Action
	b, err := json.Marshal(plain(a))
	if err != nil || len(a.Params) == 0 {
		return b, err
	}
	var m map[string]any
	if err := unmarshalNumbers(b, &m); err != nil {
		return nil, err
	}
	maps.Copy(m, a.Params)
	return json.Marshal(m)
}

// UnmarshalJSON reads an action; fields it does not know go to Params.
func (a *Action) UnmarshalJSON(b []byte) error {
	type plain Action
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var m map[string]any
	if err := unmarshalNumbers(b, &m); err != nil {
		return err
	}
	for k := range m {
		if slices.Contains(actionFields, k) {
			delete(m, k)
		}
	}
	p.Params = nil
	if len(m) > 0 {
		p.Params = m
	}
	*a = Action(p)
	return nil
}
