package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/credential"
)

func TestCredentialKeyBeyondLoopbackNeedsOne(t *testing.T) {
	t.Setenv(SecretKeyEnv, "")
	t.Setenv(SecretKeyFileEnv, "")
	home := t.TempDir()
	_, _, err := credentialKey(Config{Home: home, SecretKeyPlugin: "credential-builtin"}, false, "0.0.0.0:7700")
	if err == nil || !strings.Contains(err.Error(), "--secret-key-file") || !strings.Contains(err.Error(), SecretKeyEnv) {
		t.Fatalf("err = %v, want it to say how to give a key", err)
	}
	if _, err := os.Stat(filepath.Join(home, SecretKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a key was written beyond loopback (%v)", err)
	}
	t.Setenv(SecretKeyEnv, "a2V5")
	cfg, _, err := credentialKey(Config{Home: home, SecretKeyPlugin: "credential-builtin"}, false, "0.0.0.0:7700")
	if err != nil || cfg["key"] != "a2V5" {
		t.Fatalf("with %s: %v %v", SecretKeyEnv, cfg, err)
	}
}

func TestCredentialKeyOnLoopbackIsGeneratedOnce(t *testing.T) {
	t.Setenv(SecretKeyEnv, "")
	t.Setenv(SecretKeyFileEnv, "")
	home := t.TempDir()
	cfg, note, err := credentialKey(Config{Home: home, SecretKeyPlugin: "credential-builtin"}, true, "127.0.0.1:7700")
	path := filepath.Join(home, SecretKeyFile)
	if err != nil || cfg["key_file"] != path || !strings.Contains(note, "Generated") {
		t.Fatalf("first start: %v %q %v", cfg, note, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	first, _ := os.ReadFile(path)
	_, note, err = credentialKey(Config{Home: home, SecretKeyPlugin: "credential-builtin"}, true, "127.0.0.1:7700")
	second, _ := os.ReadFile(path)
	if err != nil || note != "" || string(first) != string(second) {
		t.Fatalf("second start: %q %v; key changed: %v", note, err, string(first) != string(second))
	}
	// A configured key wins over everything.
	cfg, _, err = credentialKey(Config{Home: home, SecretKeyPlugin: "credential-builtin", Plugins: []pluginhost.Spec{{Name: "credential-builtin", Config: map[string]any{"key_file": "/k"}}}}, false, "x")
	if err != nil || cfg != nil {
		t.Fatalf("configured key: %v %v", cfg, err)
	}
}

func TestThrottle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle()
	th.now = func() time.Time { return now }
	for range FreeAuthFailures {
		th.fail("10.0.0.1")
	}
	if err := th.check("10.0.0.1"); err != nil {
		t.Fatalf("within the free failures: %v", err)
	}
	th.fail("10.0.0.1")
	if err := th.check("10.0.0.1"); !errors.Is(err, sdk.ErrResourceExhausted) {
		t.Fatalf("over the limit: %v", err)
	}
	if err := th.check("10.0.0.2"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	now = now.Add(2 * time.Second)
	if err := th.check("10.0.0.1"); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	th.fail("10.0.0.1")
	now = now.Add(time.Second)
	if err := th.check("10.0.0.1"); err == nil {
		t.Fatalf("the second wait is not longer than the first")
	}
	now = now.Add(authFailureWindow + time.Hour)
	th.fail("10.0.0.1")
	if err := th.check("10.0.0.1"); err != nil {
		t.Fatalf("old failures are forgotten: %v", err)
	}
}

// authorizer is a test double made of a function.
type authorizer func(id *authentication.Identity, res, method string) bool

func (f authorizer) Authorize(_ context.Context, id *authentication.Identity, res, method string) (*authorization.Decision, error) {
	return &authorization.Decision{Allowed: f(id, res, method)}, nil
}

func TestCreateTokenRefusesMoreThanTheCallerHas(t *testing.T) {
	s := &security{now: time.Now, authz: authorizer(func(id *authentication.Identity, res, method string) bool {
		return res == "role:viewer" // the caller may grant viewer, nothing else it lacks
	})}
	op := &authentication.Identity{Name: "olga", Status: authentication.StatusAuthenticated, Roles: []string{"operator"}}
	cases := []struct {
		name   string
		caller *authentication.Identity
		req    api.TokenRequest
		field  string
		kind   error
	}{
		{"a role it lacks", op, api.TokenRequest{Name: "x", Roles: []string{"operator", "admin"}}, "roles[1]", sdk.ErrPermissionDenied},
		{"no role", op, api.TokenRequest{Name: "x"}, "roles", sdk.ErrInvalidArgument},
		{"a run-token name", op, api.TokenRequest{Name: "run:default/x/1", Roles: []string{"operator"}}, "name", sdk.ErrInvalidArgument},
		{"a bad duration", op, api.TokenRequest{Name: "x", Roles: []string{"operator"}, ExpiresIn: "-1h"}, "expiresIn", sdk.ErrInvalidArgument},
		{"another namespace", &authentication.Identity{Name: "n", Status: authentication.StatusAuthenticated, Roles: []string{"operator"}, Namespaces: []string{"a"}},
			api.TokenRequest{Name: "x", Roles: []string{"operator"}, Namespaces: []string{"b"}}, "namespaces[0]", sdk.ErrPermissionDenied},
		{"outliving the caller", &authentication.Identity{Name: "e", Status: authentication.StatusAuthenticated, Roles: []string{"operator"}, ExpiresAt: time.Now().Add(time.Hour)},
			api.TokenRequest{Name: "x", Roles: []string{"operator"}, ExpiresIn: "2h"}, "expiresIn", sdk.ErrPermissionDenied},
	}
	for _, c := range cases {
		_, err := s.CreateToken(context.Background(), c.caller, c.req)
		var se *sdk.Error
		if !errors.Is(err, c.kind) || !errors.As(err, &se) || se.Field != c.field {
			t.Errorf("%s: %v, want %v on %s", c.name, err, c.kind, c.field)
		}
	}
}

func TestRunTokensReachTheirRunOnly(t *testing.T) {
	a := scoped{next: authorizer(func(*authentication.Identity, string, string) bool { return true })}
	run := &authentication.Identity{Name: "run:default/deploy/7", Status: authentication.StatusAuthenticated}
	for res, want := range map[string]bool{
		"run:default/deploy/7": true, "identity:self": true, "run:default/deploy/8": false,
		"pipeline:default/deploy": false, "token:*": false, "credential:db": false,
	} {
		d, err := a.Authorize(context.Background(), run, res, "read")
		if err != nil || d.Allowed != want {
			t.Errorf("%s: %+v %v, want allowed=%v", res, d, err, want)
		}
	}
	user := &authentication.Identity{Name: "alice", Status: authentication.StatusAuthenticated}
	if d, _ := a.Authorize(context.Background(), user, "pipeline:default/deploy", "read"); !d.Allowed {
		t.Errorf("an ordinary identity is fenced too")
	}
}

// vault is a credential plugin double over a map.
type vault map[string]map[string][]byte

func (v vault) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "vault"}, nil
}
func (v vault) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}
func (v vault) Put(context.Context, *credential.PutRequest) (*credential.Meta, error) {
	return nil, sdk.ErrUnimplemented
}
func (v vault) Get(_ context.Context, name string) (*credential.Secret, error) {
	d, ok := v[name]
	if !ok {
		return nil, sdk.Errorf(sdk.ErrNotFound, "name", "no credential %q", name)
	}
	return &credential.Secret{Meta: credential.Meta{Name: name}, Data: d}, nil
}
func (v vault) Delete(context.Context, string) error                    { return sdk.ErrUnimplemented }
func (v vault) List(context.Context, string) ([]credential.Meta, error) { return nil, nil }

func TestPluginConfigurationCredentialsAreResolved(t *testing.T) {
	cfg := map[string]any{
		"url":     "https://hooks.example.com",
		"token":   map[string]any{"from_credential": "slack"},
		"servers": []any{map[string]any{"password": map[string]any{"from_credential": "db"}}},
	}
	if !namesCredentials(cfg) || namesCredentials(map[string]any{"url": "x", "nested": map[string]any{"from_credential": "a", "other": 1}}) {
		t.Fatal("namesCredentials is wrong")
	}
	v := vault{"slack": {"value": []byte("xoxb-1")}, "db": {"password": []byte("pg-pass")}}
	got, err := resolveCredentials(context.Background(), v, cfg, "config")
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	if m["token"] != "xoxb-1" || m["url"] != "https://hooks.example.com" || m["servers"].([]any)[0].(map[string]any)["password"] != "pg-pass" {
		t.Fatalf("resolved = %v", m)
	}
	if cfg["token"].(map[string]any)["from_credential"] != "slack" {
		t.Fatal("the configuration the core keeps was changed")
	}
	_, err = resolveCredentials(context.Background(), v, map[string]any{"k": map[string]any{"from_credential": "nope"}}, "config")
	if !errors.Is(err, sdk.ErrFailedPrecondition) || !strings.Contains(err.Error(), "config.k") || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing credential: %v", err)
	}
}
