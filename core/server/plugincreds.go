package server

// {from_credential: NAME} values in plugins' configuration, read once the
// credential plugin runs.

import (
	"context"
	"fmt"

	"github.com/palvella/palvella/core/orchestrator"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// namesCredentials reports whether a plugin configuration holds a
// {from_credential: NAME} value.
func namesCredentials(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := fromCredential(t); ok {
			return true
		}
		for _, e := range t {
			if namesCredentials(e) {
				return true
			}
		}
	case []any:
		for _, e := range t {
			if namesCredentials(e) {
				return true
			}
		}
	}
	return false
}

// fromCredential returns NAME of a {from_credential: NAME} value.
func fromCredential(m map[string]any) (string, bool) {
	name, ok := m["from_credential"].(string)
	return name, ok && len(m) == 1
}

// addResolved adds plugins after replacing the {from_credential: NAME}
// values of their configuration with the credentials' values, read from
// the credential plugin now. The plugin receives the value; the
// configuration the core keeps names the credential only.
func addResolved(ctx context.Context, mgr *pluginhost.Manager, choices map[sdk.Category]string, specs []pluginhost.Spec) error {
	if len(specs) == 0 {
		return nil
	}
	c, err := (&security{mgr: mgr, choices: choices}).credentials(ctx)
	if err != nil {
		return fmt.Errorf("plugin %s names credentials in its configuration: %w", specs[0].Name, err)
	}
	for _, spec := range specs {
		resolved, err := resolveCredentials(ctx, c, spec.Config, "config")
		if err != nil {
			return fmt.Errorf("configure plugin %s: %w", spec.Name, err)
		}
		spec.Config = resolved.(map[string]any)
		if _, err := mgr.Add(spec); err != nil {
			return err
		}
	}
	return nil
}

func resolveCredentials(ctx context.Context, c credential.Credential, v any, field string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if name, ok := fromCredential(t); ok {
			val, err := orchestrator.CredentialValue(ctx, c, name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			return val, nil
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			r, err := resolveCredentials(ctx, c, e, field+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := resolveCredentials(ctx, c, e, fmt.Sprintf("%s[%d]", field, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
