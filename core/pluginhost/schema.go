package pluginhost

import (
	"context"
	"fmt"
	"strings"

	"github.com/palvella/palvella/core/schema"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Schemas are the JSON Schemas one launch of a plugin described, compiled:
// its configuration's and each of its types' params. They are compiled
// once per launch (and shared with earlier launches that described the
// same documents, see schema.CompileAll): the configuration's before
// Configure, which it checks; the types' beside the rest of the launch, so
// that a launch does not wait for schemas that only pipelines need (about
// a millisecond for the standard actions' six).
type Schemas struct {
	manifest *sdk.Manifest
	// Config is the configuration's schema; nil when the plugin declares
	// none.
	Config *schema.Schema

	compiled chan struct{} // closed once types and typesErr are set
	types    map[typeKey]*schema.Schema
	typesErr error
}

type typeKey struct {
	category sdk.Category
	name     string
}

// Type returns the params schema of one of the plugin's types, nil when
// the type declares none or the plugin does not provide it. The error says
// that the plugin's schemas of its types do not compile.
func (s *Schemas) Type(c sdk.Category, name string) (*schema.Schema, error) {
	if s == nil {
		return nil, nil
	}
	<-s.compiled
	if s.typesErr != nil {
		return nil, s.typesErr
	}
	return s.types[typeKey{c, name}], nil
}

// compileSchemas compiles the configuration's schema of a manifest now,
// and its types' in the background (wait is false) or now. A schema that
// does not compile is the plugin's bug: for the configuration's it fails
// the launch, since the core could not check what the plugin is given; for
// a type's, every use of the plugin's types fails saying so.
func compileSchemas(plugin string, m *sdk.Manifest, wait bool) (*Schemas, error) {
	out := &Schemas{manifest: m, compiled: make(chan struct{})}
	if m.ConfigSchema != nil {
		c, err := schema.Compile("configuration", m.ConfigSchema)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: the JSON Schema of its configuration does not compile: %w", plugin, err)
		}
		out.Config = c
	}
	compileTypes := func() {
		defer close(out.compiled)
		docs := map[string]map[string]any{}
		for _, t := range m.Types {
			if t.ParamsSchema != nil {
				docs[t.Category.String()+" type "+t.Name] = t.ParamsSchema
			}
		}
		compiled, err := schema.CompileAll(docs)
		if err != nil {
			out.typesErr = fmt.Errorf("plugin %s: the JSON Schema of a type's params does not compile: %w", plugin, err)
			return
		}
		out.types = map[typeKey]*schema.Schema{}
		for _, t := range m.Types {
			if s := compiled[t.Category.String()+" type "+t.Name]; s != nil {
				out.types[typeKey{t.Category, t.Name}] = s
			}
		}
	}
	if wait || len(m.Types) == 0 {
		compileTypes()
	} else {
		go compileTypes()
	}
	return out, nil
}

// ConfigError is a plugin's configuration that does not match the schema
// the plugin declared. The plugin is not configured, and does not start.
type ConfigError struct {
	Plugin   string
	Problems []schema.Problem
}

func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	return fmt.Sprintf("plugin %s: configuration: %s", e.Plugin, strings.Join(msgs, "; "))
}

// Is reports ErrConfig and sdk.ErrInvalidArgument.
func (e *ConfigError) Is(target error) bool {
	return target == ErrConfig || target == sdk.ErrInvalidArgument
}

// checkConfig compiles the launch's schemas and checks the configuration
// against its schema, keeping the schemas for TypeSchema. The
// configuration is the one the plugin receives: {from_credential: NAME}
// values were resolved before the plugin was added.
func (p *Plugin) checkConfig(m *sdk.Manifest) error {
	s, err := compileSchemas(p.spec.Name, m, false)
	if err != nil {
		return err
	}
	if s.Config != nil {
		cfg := p.spec.Config
		if cfg == nil {
			cfg = map[string]any{}
		}
		if probs := s.Config.Check(cfg, schema.Options{}); len(probs) > 0 {
			return &ConfigError{Plugin: p.spec.Name, Problems: probs}
		}
	}
	p.schemas.Store(s)
	return nil
}

// Schemas returns the compiled schemas of the running launch of the
// plugin, launching it if needed.
func (p *Plugin) Schemas(ctx context.Context) (*Schemas, error) {
	m, err := p.Manifest(ctx)
	if err != nil {
		return nil, err
	}
	if s := p.schemas.Load(); s != nil && s.manifest == m {
		return s, nil
	}
	// A launch stores its schemas before its manifest is published; this
	// is only reached if another launch raced in between.
	return compileSchemas(p.spec.Name, m, true)
}

// TypeSchema returns the compiled params schema of one of the plugin's
// action, job or engine types, launching the plugin if needed. It is nil,
// with no error, when the type declares no schema.
func (p *Plugin) TypeSchema(ctx context.Context, c sdk.Category, name string) (*schema.Schema, error) {
	s, err := p.Schemas(ctx)
	if err != nil {
		return nil, err
	}
	return s.Type(c, name)
}
