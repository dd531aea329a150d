// Package config reads the server's configuration file: which plugin
// serves each single-instance category and with what configuration, the
// configuration of the other plugins, the named engines with their setup
// and teardown jobs, and the values of the server's flags.
//
// The file is versioned (apiVersion palvella.dev/v1, kind ServerConfig),
// checked against the JSON Schema [Schema], and every problem is reported
// with its line: unknown keys, wrong types, a secret that cannot be read.
// Precedence (flags over PALVELLA_* variables over the file) is applied by
// the command that owns the flags; this package gives it the file's values.
package config

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	// APIVersion and Kind head every configuration file.
	APIVersion = "palvella.dev/v1"
	Kind       = "ServerConfig"
	// FileName is the configuration's file under PALVELLA_HOME, read when
	// no --config is given and the file exists.
	FileName = "palvella.yaml"
	// DefaultEngine is the engine jobs run on when the configuration names
	// none: the local engine.
	DefaultEngine = "local"
)

//go:embed schema.json
var schemaJSON []byte

// Schema returns the configuration file's JSON Schema.
func Schema() []byte { return slices.Clone(schemaJSON) }

var compiled = sync.OnceValue(func() *jsonschema.Schema {
	s, err := spec.CompileSchema("https://palvella.dev/schemas/server/v1.json", schemaJSON)
	if err != nil {
		panic(fmt.Sprintf("config: embedded schema: %v", err))
	}
	return s
})

// Singletons are the categories served by exactly one plugin, in the
// order they appear in the file.
var Singletons = []sdk.Category{sdk.CategoryDatabase, sdk.CategoryStorage, sdk.CategoryCredential, sdk.CategoryAuthentication, sdk.CategoryAuthorization}

// File is a read configuration file. The zero File (no file) selects the
// defaults.
type File struct {
	// Path the file was read from; empty when there is none.
	Path string
	// Server holds the values of server settings by flag name (with -,
	// as the flag is spelled: shutdown-grace), as strings a flag parses.
	Server map[string]string
	// Choices are the plugins chosen for single-instance categories.
	Choices map[sdk.Category]Plugin
	// Plugins configure other plugins by name.
	Plugins map[string]Plugin
	// Engines are the named engines, in the file's order.
	Engines []Engine

	doc *spec.Document
}

// Plugin is the choice and settings of one plugin.
type Plugin struct {
	// Name of the plugin (builtin or installed).
	Name string
	// Config is the plugin's configuration, secrets from the environment
	// and files already read; {from_credential: NAME} values are left for
	// the server, which reads them once the credential plugin runs.
	Config map[string]any
	// Env is added to the plugin's environment.
	Env map[string]string
}

// Engine is a named engine.
type Engine struct {
	Name string
	// Type is an engine type that an engine plugin provides ("local").
	Type    string
	Default bool
	// Params are the type's parameters (local: shell, environ).
	Params map[string]any
	// Setup and Teardown are actions run in every job's workspace before
	// and after the job's own actions; nil for none.
	Setup, Teardown []spec.Action
}

// Line returns the line of a field of the file (such as
// "engines[1].type"), for errors found after reading; 0 without a file.
func (f *File) Line(path string) int {
	if f == nil || f.doc == nil {
		return 0
	}
	return f.doc.Line(path)
}

// Errorf returns an error about a field of the file, naming the file and
// the field's line.
func (f *File) Errorf(path, format string, args ...any) error {
	if f == nil || f.doc == nil {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	return f.doc.Errorf(path, format, args...)
}

// Default returns the engine jobs run on when a pipeline names none.
func (f *File) Default() string {
	for _, e := range f.Engines {
		if e.Default {
			return e.Name
		}
	}
	if len(f.Engines) > 0 {
		return f.Engines[0].Name
	}
	return DefaultEngine
}

// Load reads the configuration at path. With required false, a missing
// file is no error and gives the defaults (an empty File).
func Load(path string, required bool) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if !required && errors.Is(err, os.ErrNotExist) {
			return &File{}, nil
		}
		return nil, fmt.Errorf("read the server configuration: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse reads a configuration file's content. lookupEnv reads the
// variables {from_env: NAME} values name. The error lists every problem,
// each with the file's name, the line and the field.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*File, error) {
	doc, err := spec.ReadDocument(file, data, compiled())
	if err != nil {
		return nil, err
	}
	root, _ := doc.Value.(map[string]any)
	f := &File{Path: file, Server: map[string]string{}, Choices: map[sdk.Category]Plugin{}, Plugins: map[string]Plugin{}, doc: doc}
	r := &reader{f: f, env: lookupEnv, dir: filepath.Dir(file)}
	if srv, ok := root["server"].(map[string]any); ok {
		for k, v := range srv {
			f.Server[strings.ReplaceAll(k, "_", "-")] = fmt.Sprint(v)
		}
	}
	for _, c := range Singletons {
		m, ok := root[c.String()].(map[string]any)
		if !ok {
			continue
		}
		p := r.plugin(c.String(), m)
		p.Name, _ = m["plugin"].(string)
		if !strings.HasPrefix(p.Name, c.String()+"-") {
			// A plugin may be named anything; the category is checked
			// against its manifest once it runs. Names that say another
			// category are most likely a slip.
			for _, other := range sdk.Categories() {
				if other != c && strings.HasPrefix(p.Name, other.String()+"-") {
					r.errs = append(r.errs, doc.Errorf(c.String()+".plugin", "%q is named as a %s plugin, not a %s plugin", p.Name, other, c))
				}
			}
		}
		f.Choices[c] = p
	}
	if ps, ok := root["plugins"].(map[string]any); ok {
		names := make([]string, 0, len(ps))
		for n := range ps {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			m, _ := ps[n].(map[string]any)
			p := r.plugin(spec.Key("plugins", n), m)
			p.Name = n
			f.Plugins[n] = p
		}
	}
	if es, ok := root["engines"].([]any); ok {
		r.engines(es)
	}
	if len(r.errs) > 0 {
		slices.SortStableFunc(r.errs, func(a, b *spec.Error) int { return a.Line - b.Line })
		return nil, spec.Errors(r.errs)
	}
	return f, nil
}

type reader struct {
	f    *File
	env  func(string) (string, bool)
	dir  string
	errs []*spec.Error
}

func (r *reader) add(path, format string, args ...any) {
	r.errs = append(r.errs, r.f.doc.Errorf(path, format, args...))
}

func (r *reader) plugin(path string, m map[string]any) Plugin {
	p := Plugin{}
	if c, ok := m["config"].(map[string]any); ok {
		p.Config, _ = r.secrets(spec.Key(path, "config"), c).(map[string]any)
	}
	if e, ok := m["env"].(map[string]any); ok {
		p.Env = map[string]string{}
		for k, v := range e {
			s, _ := r.secrets(spec.Key(spec.Key(path, "env"), k), v).(string)
			p.Env[k] = s
		}
	}
	return p
}

// secrets returns v with every {from_env} and {from_file} value read.
// Their errors name the variable or the file, never a value.
func (r *reader) secrets(path string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			if name, ok := v["from_env"].(string); ok {
				val, set := r.env(name)
				if !set {
					r.add(path, "from_env: the server's environment has no variable %s", name)
				}
				return val
			}
			if name, ok := v["from_file"].(string); ok {
				if !filepath.IsAbs(name) {
					name = filepath.Join(r.dir, name)
				}
				b, err := os.ReadFile(name)
				if err != nil {
					r.add(path, "from_file: %v", pathError(err))
					return ""
				}
				return strings.TrimRight(string(b), "\r\n")
			}
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = r.secrets(spec.Key(path, k), x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = r.secrets(spec.Index(path, i), x)
		}
		return out
	}
	return v
}

// noCredential reports the {from_credential: NAME} values in a named
// engine's parameters: the server reads credentials for plugins'
// configuration only, and otherwise the type's schema would only say
// "got object, want string".
func (r *reader) noCredential(path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["from_credential"]; ok && len(v) == 1 {
			r.add(path, "a named engine's parameters take secrets from the server's environment or files ({from_env}, {from_file}), not from_credential; a credential can go in the engine plugin's configuration instead (plugins: {PLUGIN: {config: ...}}), which the engine's parameters override")
			return
		}
		for k, x := range v {
			r.noCredential(spec.Key(path, k), x)
		}
	case []any:
		for i, x := range v {
			r.noCredential(spec.Index(path, i), x)
		}
	}
}

// pathError is an error reading a file, without the Go operation's name.
func pathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func (r *reader) engines(list []any) {
	seen := map[string]int{}
	defaults := 0
	for i, item := range list {
		path := spec.Index("engines", i)
		m, _ := item.(map[string]any)
		e := Engine{Params: map[string]any{}}
		e.Name, _ = m["name"].(string)
		e.Type, _ = m["type"].(string)
		e.Default, _ = m["default"].(bool)
		if first, dup := seen[e.Name]; dup {
			r.add(spec.Key(path, "name"), "engine %q is already defined at engines[%d]", e.Name, first)
		}
		seen[e.Name] = i
		if e.Default {
			defaults++
			if defaults == 2 {
				r.add(spec.Key(path, "default"), "only one engine can be the default")
			}
		}
		for k, v := range m {
			switch k {
			case "name", "type", "default", "setup", "teardown":
				continue
			}
			r.noCredential(spec.Key(path, k), v)
			e.Params[k] = r.secrets(spec.Key(path, k), v)
		}
		e.Setup = r.engineJob(path, "setup", m["setup"])
		e.Teardown = r.engineJob(path, "teardown", m["teardown"])
		r.f.Engines = append(r.f.Engines, e)
	}
}

// engineJob reads an engine's setup or teardown actions, checked as the
// actions of a pipeline's job are.
func (r *reader) engineJob(path, which string, v any) []spec.Action {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	at := spec.Key(spec.Key(path, which), "actions")
	actions, _ := r.secrets(at, m["actions"]).([]any)
	data, err := json.Marshal(map[string]any{
		"apiVersion": spec.APIVersion, "kind": "Pipeline", "metadata": map[string]any{"name": "engine"},
		"spec": map[string]any{"jobs": []any{map[string]any{"name": which, "actions": actions}}},
	})
	if err != nil {
		r.add(at, "%v", err)
		return nil
	}
	p, err := spec.Load(r.f.Path, data, spec.Options{})
	if err != nil {
		var list spec.Errors
		if !errors.As(err, &list) {
			r.add(at, "%v", err)
			return nil
		}
		for _, e := range list {
			sub, ok := strings.CutPrefix(e.Path, "spec.jobs[0].actions")
			if !ok {
				r.add(at, "%s", e.Message)
				continue
			}
			r.add(at+sub, "%s", e.Message)
		}
		return nil
	}
	out := p.Spec.Jobs[0].Actions
	for i, a := range out {
		for k, val := range a.Env {
			if val.FromCredential != "" {
				r.add(spec.Key(spec.Key(spec.Index(at, i), "env"), k), "an engine's %s actions take secrets from the server's environment or files ({from_env}, {from_file}), not from_credential", which)
			}
		}
	}
	return out
}
