package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palvella/palvella/plugin-sdk/authentication"
)

func TestAccessAnswersForTheCallerAsTheRoutesDecide(t *testing.T) {
	b := &fakeBackend{}
	authn := tokens{
		"viewer-token": {Name: "vic", Status: authentication.StatusAuthenticated},
		"team-a-token": {Name: "ta", Status: authentication.StatusAuthenticated, Namespaces: []string{"team-a"}},
	}
	g := &grants{allow: map[string]map[string]bool{
		"vic": {"read run:default/deploy/*": true, "read identity:self": true},
		"ta":  {"*": true},
	}}
	f := &fixture{b: b, authz: g}
	f.srv = httptest.NewServer(New(b, authn, g, Options{}))
	t.Cleanup(f.srv.Close)

	ask := func(token, body string) []AccessResult {
		t.Helper()
		r := f.do(t, http.MethodPost, "/api/v1/whoami/access", token, body)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var out AccessResponse
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		return out.Results
	}
	got := ask("viewer-token", `{"checks":[{"resource":"run:default/deploy/*","permission":"read"},{"resource":"run:default/deploy/*","permission":"approve"}]}`)
	if len(got) != 2 || !got[0].Allowed || got[1].Allowed || got[1].Reason != "no rule allows it" {
		t.Errorf("viewer: %+v, want read allowed and approve denied with the authorizer's reason", got)
	}
	// A limited identity is refused what the routes refuse it, even when
	// the authorizer would allow it.
	got = ask("team-a-token", `{"checks":[{"resource":"run:team-a/x/*","permission":"approve"},{"resource":"run:team-b/x/*","permission":"read"},{"resource":"plugin:*","permission":"read"}]}`)
	if len(got) != 3 || !got[0].Allowed || got[1].Allowed || got[2].Allowed || got[1].Reason != RuleNamespaceScope || got[2].Reason != RuleNamespaceScope {
		t.Errorf("limited: %+v, want only team-a allowed", got)
	}
	for _, bad := range []string{
		`{"checks":[{"resource":"run:x","permission":"fly"}]}`,
		`{"checks":[{"resource":"nokind","permission":"read"}]}`,
		`{"checks":[` + strings.Repeat(`{"resource":"a:b","permission":"read"},`, MaxAccessChecks) + `{"resource":"a:b","permission":"read"}]}`,
	} {
		if r := f.do(t, http.MethodPost, "/api/v1/whoami/access", "viewer-token", bad); r.status != http.StatusBadRequest {
			t.Errorf("%.60s: status %d, want 400", bad, r.status)
		}
	}
	if r := f.do(t, http.MethodPost, "/api/v1/whoami/access", "", `{}`); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: status %d, want 401", r.status)
	}
}
