package rbac

import (
	"fmt"
	"slices"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

var configSchema = map[string]any{
	"$schema":              "https://json-schema.org/draft/2020-12/schema",
	"type":                 "object",
	"additionalProperties": false,
	"properties": map[string]any{
		"roles": map[string]any{
			"type":        "array",
			"description": "Roles in addition to the built-in admin, operator, developer and viewer.",
			"items": map[string]any{
				"type":                 "object",
				"additionalProperties": false,
				"required":             []any{"name", "permissions"},
				"properties": map[string]any{
					"name":        map[string]any{"type": "string", "minLength": 1},
					"description": map[string]any{"type": "string"},
					"permissions": map[string]any{
						"type":     "array",
						"minItems": 1,
						"items": map[string]any{
							"type":                 "object",
							"additionalProperties": false,
							"required":             []any{"resources", "methods"},
							"properties": map[string]any{
								"resources": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string", "minLength": 1}},
								"methods": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{
									"enum": []any{"read", "write", "run", "approve", "use", "credentialRead", "lease", "*"},
								}},
								"effect": map[string]any{"enum": []any{"Allow", "Deny"}, "default": "Allow"},
							},
						},
					},
				},
			},
		},
	},
}

// parseConfig reads the configuration into the full role table, built-in
// roles first. Problems are diagnostics naming the field.
func parseConfig(cfg map[string]any) (map[string]Role, []sdk.Diagnostic) {
	d := &diagnoser{}
	roles := map[string]Role{}
	for _, r := range BuiltinRoles() {
		roles[r.Name] = r
	}
	for k := range cfg {
		if k != "roles" {
			d.bad(k, "unknown setting (known: roles)")
		}
	}
	raw, ok := cfg["roles"]
	if !ok || raw == nil {
		return roles, d.diags
	}
	list, ok := raw.([]any)
	if !ok {
		d.bad("roles", "must be a list of roles")
		return roles, d.diags
	}
	for i, item := range list {
		field := fmt.Sprintf("roles[%d]", i)
		role, ok := parseRole(d, field, item)
		if !ok {
			continue
		}
		if _, builtin := builtinNames()[role.Name]; builtin {
			d.bad(field+".name", fmt.Sprintf("%q is a built-in role; give the role another name", role.Name))
			continue
		}
		if _, dup := roles[role.Name]; dup {
			d.bad(field+".name", fmt.Sprintf("the role %q is defined twice", role.Name))
			continue
		}
		roles[role.Name] = role
	}
	return roles, d.diags
}

func builtinNames() map[string]bool {
	out := map[string]bool{}
	for _, r := range BuiltinRoles() {
		out[r.Name] = true
	}
	return out
}

func parseRole(d *diagnoser, field string, item any) (Role, bool) {
	m, ok := item.(map[string]any)
	if !ok {
		d.bad(field, "must be an object with name and permissions")
		return Role{}, false
	}
	n := len(d.diags)
	for k := range m {
		if k != "name" && k != "description" && k != "permissions" {
			d.bad(field+"."+k, "unknown setting (known: name, description, permissions)")
		}
	}
	var role Role
	name, _ := m["name"].(string)
	if strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t\n") {
		d.bad(field+".name", "must be a name without spaces")
	}
	role.Name = name
	if v, ok := m["description"]; ok {
		if role.Description, ok = v.(string); !ok {
			d.bad(field+".description", "must be a string")
		}
	}
	perms, ok := m["permissions"].([]any)
	if !ok || len(perms) == 0 {
		d.bad(field+".permissions", "must be a non-empty list of permissions")
	}
	for j, p := range perms {
		if perm, ok := parsePermission(d, fmt.Sprintf("%s.permissions[%d]", field, j), p); ok {
			role.Permissions = append(role.Permissions, perm)
		}
	}
	return role, len(d.diags) == n
}

func parsePermission(d *diagnoser, field string, item any) (Permission, bool) {
	m, ok := item.(map[string]any)
	if !ok {
		d.bad(field, "must be an object with resources, methods and effect")
		return Permission{}, false
	}
	n := len(d.diags)
	for k := range m {
		if k != "resources" && k != "methods" && k != "effect" {
			d.bad(field+"."+k, "unknown setting (known: resources, methods, effect)")
		}
	}
	perm := Permission{Effect: authorization.EffectAllow}
	perm.Resources = stringList(d, field+".resources", m["resources"], func(s string) string {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
			return "must be a resource pattern without spaces, such as pipeline:default/*"
		}
		return ""
	})
	known := append(authorization.Methods(), "*")
	perm.Methods = stringList(d, field+".methods", m["methods"], func(s string) string {
		if !slices.Contains(known, s) {
			return fmt.Sprintf("unknown method %q (want one of %s)", s, strings.Join(known, ", "))
		}
		return ""
	})
	if v, ok := m["effect"]; ok {
		s, _ := v.(string)
		e, err := authorization.ParseEffect(s)
		if err != nil {
			d.bad(field+".effect", "must be Allow or Deny")
		}
		perm.Effect = e
	}
	return perm, len(d.diags) == n
}

// stringList reads a non-empty list of strings, each checked by check
// (which returns what is wrong, or "").
func stringList(d *diagnoser, field string, v any, check func(string) string) []string {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		d.bad(field, "must be a non-empty list")
		return nil
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			d.bad(fmt.Sprintf("%s[%d]", field, i), "must be a string")
			continue
		}
		if msg := check(s); msg != "" {
			d.bad(fmt.Sprintf("%s[%d]", field, i), msg)
			continue
		}
		out = append(out, s)
	}
	return out
}

type diagnoser struct{ diags []sdk.Diagnostic }

func (d *diagnoser) bad(field, summary string) {
	d.diags = append(d.diags, sdk.Diagnostic{Severity: sdk.SeverityError, Field: "config." + field, Summary: summary})
}
