package rbac

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

var ctx = context.Background()

// testConfig adds a deployer role that may run production pipelines except
// the dangerous ones, and a ci role that may read ci credentials' values.
var testConfig = map[string]any{
	"roles": []any{
		map[string]any{"name": "deployer", "permissions": []any{
			map[string]any{"resources": []any{"pipeline:prod/*"}, "methods": []any{"run", "read"}, "effect": "Allow"},
			map[string]any{"resources": []any{"pipeline:prod/danger-*"}, "methods": []any{"*"}, "effect": "Deny"},
		}},
		map[string]any{"name": "ci", "description": "CI jobs", "permissions": []any{
			map[string]any{"resources": []any{"credential:ci-*"}, "methods": []any{"credentialRead"}},
		}},
	},
}

func configured(t *testing.T, cfg map[string]any) *Plugin {
	t.Helper()
	p := New()
	resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: cfg})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure diagnostics: %+v", resp.Diagnostics)
	}
	return p
}

func who(name string, roles ...string) *authentication.Identity {
	return &authentication.Identity{Name: name, Status: authentication.StatusAuthenticated, Roles: roles}
}

func req(id *authentication.Identity, method, resource string) authorization.AuthorizeRequest {
	return authorization.AuthorizeRequest{Identity: id, Method: method, Resource: resource}
}

func TestConformance(t *testing.T) {
	scoped := who("team-a-bot", "developer")
	scoped.Namespaces = []string{"team-a"}
	fx := sdktest.AuthorizationFixture{Cases: []sdktest.AuthorizationCase{
		{Name: "admin reads credential values", Request: req(who("root", "admin"), "credentialRead", "credential:prod-db"), Allowed: true},
		{Name: "viewer reads a pipeline", Request: req(who("v", "viewer"), "read", "pipeline:default/build"), Allowed: true},
		{Name: "viewer cannot write", Request: req(who("v", "viewer"), "write", "pipeline:default/build")},
		{Name: "developer runs a pipeline", Request: req(who("d", "developer"), "run", "pipeline:default/build"), Allowed: true},
		{Name: "developer cannot approve", Request: req(who("d", "developer"), "approve", "run:default/build/7")},
		{Name: "operator approves", Request: req(who("o", "operator"), "approve", "run:default/build/7"), Allowed: true},
		{Name: "operator cannot read credential values", Request: req(who("o", "operator"), "credentialRead", "credential:ci-key")},
		{Name: "deployer runs prod", Request: req(who("dep", "deployer"), "run", "pipeline:prod/app"), Allowed: true},
		{Name: "deny wins over admin", Request: req(who("dep", "admin", "deployer"), "run", "pipeline:prod/danger-drop")},
		{Name: "ci reads ci credentials", Request: req(who("ci", "ci"), "credentialRead", "credential:ci-key"), Allowed: true},
		{Name: "ci cannot read other credentials", Request: req(who("ci", "ci"), "credentialRead", "credential:prod-db")},
		{Name: "namespace-scoped identity in its namespace", Request: req(scoped, "run", "pipeline:team-a/build"), Allowed: true},
		{Name: "namespace-scoped identity in another namespace", Request: req(scoped, "read", "pipeline:team-b/build")},
		{Name: "no roles", Request: req(who("nobody"), "read", "pipeline:default/build")},
		{Name: "undefined role", Request: req(who("x", "superuser"), "read", "pipeline:default/build")},
	}}
	sdktest.RunBoth(t, func(t *testing.T) authorization.Authorization { return configured(t, testConfig) },
		authorization.Service, sdktest.AuthorizationSuite(fx))
}

func decide(t *testing.T, p *Plugin, r authorization.AuthorizeRequest) *authorization.Decision {
	t.Helper()
	d, err := p.Authorize(ctx, &r)
	if err != nil {
		t.Fatalf("Authorize(%s on %s): %v", r.Method, r.Resource, err)
	}
	return d
}

func TestDecisionNamesRoleAndPermission(t *testing.T) {
	p := configured(t, testConfig)
	for _, tc := range []struct {
		req  authorization.AuthorizeRequest
		rule string
	}{
		{req(who("d", "developer"), "read", "pipeline:x/y"), "developer.permissions[0]"},
		{req(who("d", "developer"), "write", "trigger:x/nightly"), "developer.permissions[1]"},
		{req(who("dep", "viewer", "deployer"), "read", "pipeline:prod/danger-x"), "deployer.permissions[1]"},
		{req(who("dep", "deployer", "viewer"), "read", "pipeline:prod/danger-x"), "deployer.permissions[1]"},
		{req(&authentication.Identity{Name: "r", Status: authentication.StatusRevoked, Roles: []string{"admin"}}, "read", "run:a/b"), RuleIdentityStatus},
	} {
		if d := decide(t, p, tc.req); d.Rule != tc.rule {
			t.Errorf("%v %s on %s decided by %q (%s), want %q", tc.req.Identity.Roles, tc.req.Method, tc.req.Resource, d.Rule, d.Reason, tc.rule)
		}
	}
}

func TestBuiltinRoles(t *testing.T) {
	p := New()
	resources := []string{"pipeline:default/build", "run:default/build/1", "trigger:default/nightly", "credential:ci-key", "plugin:engine-docker", "token:tok_1", "worker:gpu-1"}
	// want[role][method] lists the resources (by index) the role may use
	// the method on.
	want := map[string]map[string]string{
		"admin":     {"read": "0123456", "write": "0123456", "run": "0123456", "approve": "0123456", "use": "0123456", "credentialRead": "0123456", "lease": "0123456"},
		"operator":  {"read": "0123456", "write": "01236", "run": "0123", "approve": "0123", "use": "3", "credentialRead": "", "lease": ""},
		"developer": {"read": "0123456", "write": "012", "run": "012", "approve": "", "use": "3", "credentialRead": "", "lease": ""},
		"viewer":    {"read": "0123456", "write": "", "run": "", "approve": "", "use": "", "credentialRead": "", "lease": ""},
		// A worker leases and reports, and reads nothing through the API.
		"worker": {"read": "", "write": "", "run": "", "approve": "", "use": "", "credentialRead": "", "lease": "6"},
	}
	for role, methods := range want {
		for method, allowed := range methods {
			for i, res := range resources {
				d := decide(t, p, req(who("u", role), method, res))
				if wantAllowed := strings.Contains(allowed, fmt.Sprint(i)); d.Allowed != wantAllowed {
					t.Errorf("%s %s on %s: allowed = %v, want %v", role, method, res, d.Allowed, wantAllowed)
				}
			}
		}
	}
}

func TestNamespaceScope(t *testing.T) {
	p := New()
	id := who("bot", "admin")
	id.Namespaces = []string{"a", "b"}
	for res, allowed := range map[string]bool{
		"pipeline:a/x": true, "run:b/x/1": true, "pipeline:c/x": false, "namespace:a": true, "namespace:c": false,
		"credential:ci-key": true, // belongs to no namespace: the roles decide
	} {
		d := decide(t, p, req(id, "read", res))
		if d.Allowed != allowed {
			t.Errorf("read %s by a bot limited to [a b]: allowed = %v (%s), want %v", res, d.Allowed, d.Reason, allowed)
		}
		if !allowed && d.Rule != RuleNamespaceScope {
			t.Errorf("read %s: denied by %q, want %q", res, d.Rule, RuleNamespaceScope)
		}
	}
}

func TestConfigDiagnosticsNameTheFieldAndKeepThePrevious(t *testing.T) {
	p := configured(t, testConfig)
	role := func(perm map[string]any) map[string]any {
		return map[string]any{"roles": []any{map[string]any{"name": "r", "permissions": []any{perm}}}}
	}
	for _, tc := range []struct {
		name  string
		cfg   map[string]any
		field string
	}{
		{"unknown setting", map[string]any{"rolez": 1}, "config.rolez"},
		{"roles not a list", map[string]any{"roles": "admin"}, "config.roles"},
		{"redefines a built-in role", map[string]any{"roles": []any{map[string]any{"name": "admin", "permissions": []any{map[string]any{"resources": []any{"*"}, "methods": []any{"read"}}}}}}, "config.roles[0].name"},
		{"no name", map[string]any{"roles": []any{map[string]any{"permissions": []any{map[string]any{"resources": []any{"*"}, "methods": []any{"read"}}}}}}, "config.roles[0].name"},
		{"no permissions", map[string]any{"roles": []any{map[string]any{"name": "r"}}}, "config.roles[0].permissions"},
		{"unknown method", role(map[string]any{"resources": []any{"*"}, "methods": []any{"delete"}}), "config.roles[0].permissions[0].methods[0]"},
		{"bad effect", role(map[string]any{"resources": []any{"*"}, "methods": []any{"read"}, "effect": "Maybe"}), "config.roles[0].permissions[0].effect"},
		{"empty resources", role(map[string]any{"resources": []any{}, "methods": []any{"read"}}), "config.roles[0].permissions[0].resources"},
		{"resource with a space", role(map[string]any{"resources": []any{"pipeline:a b"}, "methods": []any{"read"}}), "config.roles[0].permissions[0].resources[0]"},
	} {
		resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: tc.cfg})
		if err != nil {
			t.Fatalf("%s: Configure error %v, want diagnostics", tc.name, err)
		}
		if !sdk.HasErrors(resp.Diagnostics) || resp.Diagnostics[0].Field != tc.field {
			t.Errorf("%s: diagnostics %+v, want an error about %s", tc.name, resp.Diagnostics, tc.field)
		}
	}
	if d := decide(t, p, req(who("dep", "deployer"), "run", "pipeline:prod/app")); !d.Allowed {
		t.Fatalf("rejected configurations replaced the roles: deployer denied (%s)", d.Reason)
	}
	dup := map[string]any{"roles": []any{testConfig["roles"].([]any)[0], testConfig["roles"].([]any)[0]}}
	resp, _ := p.Configure(ctx, &sdk.ConfigureRequest{Config: dup})
	if !sdk.HasErrors(resp.Diagnostics) || resp.Diagnostics[0].Field != "config.roles[1].name" {
		t.Errorf("a role defined twice: diagnostics %+v, want an error about config.roles[1].name", resp.Diagnostics)
	}
}

func TestEmptyConfigHasTheBuiltinRoles(t *testing.T) {
	p := configured(t, map[string]any{})
	var names []string
	for _, r := range p.Roles() {
		names = append(names, r.Name)
	}
	if fmt.Sprint(names) != "[admin developer operator viewer worker]" {
		t.Fatalf("roles = %v, want the five built-in roles", names)
	}
	if d := decide(t, p, req(who("v", "viewer"), "read", "pipeline:default/x")); !d.Allowed {
		t.Fatalf("viewer cannot read with an empty configuration")
	}
}

func TestBadRequestsNameTheField(t *testing.T) {
	_, err := New().Authorize(ctx, &authorization.AuthorizeRequest{Identity: who("x"), Method: "read"})
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrInvalidArgument) || !errors.As(err, &typed) || typed.Field != "resource" {
		t.Fatalf("Authorize without a resource: %v, want sdk.ErrInvalidArgument about resource", err)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, resource string
		want              bool
	}{
		{"*", "pipeline:default/build", true},
		{"*", "", true},
		{"pipeline:default/*", "pipeline:default/build", true},
		{"pipeline:default/*", "pipeline:default/a/b", true},
		{"pipeline:default/*", "pipeline:other/build", false},
		{"pipeline:default/*", "pipeline:default", false},
		{"credential:ci-*", "credential:ci-key", true},
		{"credential:ci-*", "credential:prod-key", false},
		{"run:*", "run:default/build/1", true},
		{"run:*", "pipeline:run:x", false},
		{"*:default/*", "trigger:default/nightly", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"**", "x", true},
	} {
		if got := Match(tc.pattern, tc.resource); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.resource, got, tc.want)
		}
	}
}

// FuzzMatch checks Match against a regular expression that means the same.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"pipeline:default/*", "pipeline:default/x"}, {"a*b*c", "abxc"}, {"*", ""}, {"**a", "aaa"}, {"credential:ci-*", "credential:ci"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, resource string) {
		got := Match(pattern, resource)
		if !strings.Contains(pattern, "*") && got != (pattern == resource) {
			t.Fatalf("Match(%q, %q) = %v for a pattern without *", pattern, resource, got)
		}
		if !utf8.ValidString(pattern) || !utf8.ValidString(resource) {
			return // the reference below works on UTF-8 only
		}
		parts := strings.Split(pattern, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if want := re.MatchString(resource); got != want {
			t.Fatalf("Match(%q, %q) = %v, the regular expression %s says %v", pattern, resource, got, re, want)
		}
	})
}
