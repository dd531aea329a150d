package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/spec"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

// The fake backend serves the security routes too: it records what it was
// asked and answers as a real one would, without values.

var _ Security = (*fakeBackend)(nil)

func (b *fakeBackend) Bootstrap(context.Context) (*NewToken, error) {
	return &NewToken{Token: "pvt_first", TokenMeta: authentication.TokenMeta{ID: "tok_1", Owner: "admin", Roles: []string{"admin"}}}, nil
}

func (b *fakeBackend) CreateToken(_ context.Context, caller *authentication.Identity, req TokenRequest) (*NewToken, error) {
	if caller == nil {
		return nil, sdk.Errorf(sdk.ErrUnauthenticated, "", "no caller")
	}
	return &NewToken{Token: "pvt_new", TokenMeta: authentication.TokenMeta{ID: "tok_2", Owner: req.Name, Roles: req.Roles, CreatedAt: time.Now()}}, nil
}

func (b *fakeBackend) ListTokens(context.Context, *authentication.Identity) ([]Token, error) {
	return nil, nil
}

func (b *fakeBackend) RevokeToken(_ context.Context, _ *authentication.Identity, id string) (*Token, error) {
	return &Token{TokenMeta: authentication.TokenMeta{ID: id, RevokedAt: time.Now()}}, nil
}

func (b *fakeBackend) RotateManagementToken(context.Context, *authentication.Identity) (*RotatedToken, error) {
	return &RotatedToken{NewToken: NewToken{Token: "pvt_rotated", TokenMeta: authentication.TokenMeta{ID: "tok_3", Owner: "palvella:management"}}, Management: true}, nil
}

func (b *fakeBackend) SetCredential(_ context.Context, _ *authentication.Identity, name string, req CredentialRequest) (*Credential, error) {
	return &Credential{CredentialMeta: credential.Meta{Name: name, Type: "secret"}, Namespace: req.Namespace}, nil
}

func (b *fakeBackend) ListCredentials(context.Context, *authentication.Identity) ([]Credential, error) {
	return nil, nil
}

func (b *fakeBackend) DeleteCredential(context.Context, *authentication.Identity, string) error {
	return nil
}

// The fake's credentials: "teamb-db" belongs to team-b, every other one
// is global.
func (b *fakeBackend) CredentialNamespace(_ context.Context, name string) (string, error) {
	if name == "teamb-db" {
		return "team-b", nil
	}
	return "", nil
}

func (b *fakeBackend) CheckCredentialUse(_ context.Context, _ *authentication.Identity, namespace, _ string, refs []spec.CredentialRef) ([]Problem, error) {
	var out []Problem
	for _, r := range refs {
		if r.Name == "teamb-db" && namespace != "team-b" {
			out = append(out, Problem{Line: r.Line, Field: r.Path, Message: `credential "teamb-db" belongs to namespace team-b`})
		}
	}
	return out, nil
}

func TestCreateTokenAnswersTheTokenOnceWithNoStore(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodPost, "/api/v1/tokens", "admin-token", `{"name":"ci","roles":["developer"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got["token"] != "pvt_new" || got["owner"] != "ci" || got["id"] != "tok_2" {
		t.Errorf("body = %s, want token, owner and id at the top level", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
}

func TestSecurityBodiesRefuseUnknownFields(t *testing.T) {
	f := newFixture(t, Options{})
	for _, c := range []struct{ method, path, body, field string }{
		{http.MethodPost, "/api/v1/tokens", `{"name":"ci","owner":"root"}`, "owner"},
		{http.MethodPut, "/api/v1/credentials/db", `{"secret":"x"}`, "secret"},
		{http.MethodPut, "/api/v1/credentials/db", `{"value":3}`, "value"},
	} {
		r := f.do(t, c.method, c.path, "admin-token", c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s %s %s: status %d, want 400", c.method, c.path, c.body, r.status)
			continue
		}
		if e := r.err(t); e.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.body, e.Field, c.field)
		}
	}
}

func TestWhoamiAnswersTheCallersIdentity(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do(t, http.MethodGet, "/api/v1/whoami", "admin-token", "")
	var id authentication.Identity
	if err := json.Unmarshal(r.body, &id); err != nil || id.Name != "alice" || !id.Authenticated() {
		t.Fatalf("whoami = %d %s (%v), want alice", r.status, r.body, err)
	}
}

func TestBackendWithoutSecurityAnswers501(t *testing.T) {
	var only struct{ Backend }
	only.Backend = &fakeBackend{}
	authn := tokens{"admin-token": {Name: "alice", Status: authentication.StatusAuthenticated}}
	srv := httptest.NewServer(New(only, authn, &grants{allow: map[string]map[string]bool{"alice": {"*": true}}}, Options{}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/credentials", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e ErrorResponse
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(e.Error.Message, "tokens or credentials") {
		t.Fatalf("status %d %+v, want 501", resp.StatusCode, e)
	}
}
