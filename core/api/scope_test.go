package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/authentication"
)

// TestEveryRouteKeepsNamespaces calls every route as identities limited to
// the namespace team-a, with every other path filled in with team-b's
// things, under an authorizer that allows everything: what keeps them
// out is the API's own scope. A route without a scope fails.
func TestEveryRouteKeepsNamespaces(t *testing.T) {
	b := &fakeBackend{}
	authn := tokens{
		"team-a-admin": {Name: "ta", Status: authentication.StatusAuthenticated, Roles: []string{"admin"}, Namespaces: []string{"team-a"}},
	}
	g := &grants{allow: map[string]map[string]bool{"ta": {"*": true}}}
	f := &fixture{b: b, authz: g}
	f.srv = httptest.NewServer(New(b, authn, g, Options{}))
	t.Cleanup(f.srv.Close)
	teamB := strings.NewReplacer("{ns}", "team-b", "{name}", "teamb-db", "{run}", "build-7", "{job}", "test", "{action}", "unit")
	for _, rt := range Routes() {
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			if rt.Public {
				return
			}
			path := teamB.Replace(rt.Pattern)
			body := ""
			switch rt.Body {
			case BodyPipeline:
				body = strings.Replace(pipelineFile, "name: build", "name: build\n  namespace: team-b", 1)
			case BodyJSON:
				body = "{}"
			}
			r := f.do(t, rt.Method, path, "team-a-admin", body)
			switch rt.Scope {
			case ScopeNamespaced, ScopeServer:
				if r.status != http.StatusForbidden || !strings.Contains(r.err(t).Message, RuleNamespaceScope) {
					t.Fatalf("status %d, want 403 by %s: %s", r.status, RuleNamespaceScope, r.body)
				}
			case ScopeOwned, ScopeFiltered, ScopeCaller:
				// The handler narrows it (the real server's test checks how);
				// the API itself lets it through.
				if r.status == http.StatusForbidden && strings.Contains(string(r.body), RuleNamespaceScope) {
					t.Fatalf("refused by the API's scope: %s", r.body)
				}
			default:
				t.Fatalf("route has no namespace scope (Route.Scope): say what it does for an identity limited to namespaces")
			}
		})
	}
}

func TestApplyRefusesCredentialsOfAnotherNamespace(t *testing.T) {
	f := newFixture(t, Options{})
	file := strings.Replace(pipelineFile, "- run: go test", "- name: unit\n          run: go test", 1) + "  env:\n    DB_PASSWORD: {from_credential: teamb-db}\n"
	for _, route := range []string{"/api/v1/pipelines/apply", "/api/v1/pipelines/validate"} {
		r := f.do(t, http.MethodPost, route+"?filename=p.yaml", "admin-token", file)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: status %d, want 422: %s", route, r.status, r.body)
		}
		e := r.err(t)
		if len(e.Problems) != 1 || e.Problems[0].Field != "spec.env.DB_PASSWORD" || e.Problems[0].File != "p.yaml" || e.Problems[0].Line != 12 ||
			!strings.Contains(e.Problems[0].Message, `credential "teamb-db" belongs to namespace team-b`) {
			t.Errorf("%s: problems %+v", route, e.Problems)
		}
	}
	if r := f.do(t, http.MethodPost, "/api/v1/pipelines/apply?namespace=team-b", "admin-token", file); r.status/100 != 2 {
		t.Errorf("the same file in team-b: %d %s", r.status, r.body)
	}
}
