package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// newConfigured returns a plugin configured with cfg, closed when the test
// ends.
func newConfigured(t *testing.T, cfg map[string]any) *Plugin {
	t.Helper()
	p := New()
	resp, err := p.Configure(context.Background(), &sdk.ConfigureRequest{Config: cfg})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if sdk.HasErrors(resp.Diagnostics) {
		t.Fatalf("Configure diagnostics: %+v", resp.Diagnostics)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newInTemp(t *testing.T) authentication.Authentication {
	return newConfigured(t, map[string]any{"path": filepath.Join(t.TempDir(), "tokens.db")})
}

func TestConformance(t *testing.T) {
	sdktest.RunBoth(t, newInTemp, authentication.Service, sdktest.AuthenticationSuite)
}

var ctx = context.Background()

func bearer(tok string) *authentication.AuthenticateRequest {
	return &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: tok}
}

func TestTokenFormat(t *testing.T) {
	p := newConfigured(t, map[string]any{"path": filepath.Join(t.TempDir(), "tokens.db")})
	tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "alice"})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if !strings.HasPrefix(tok.Token, "pvt_") || len(tok.Token) != 47 {
		t.Fatalf("token %q is not pvt_ and 43 characters", tok.Token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok.Token, "pvt_"))
	if err != nil || len(raw) != 32 {
		t.Fatalf("token does not carry 32 base64url bytes: %d bytes, %v", len(raw), err)
	}
}

// TestDatabaseHoldsHashesOnly reads every file of the database and finds
// the token's hash but neither its plaintext nor its random bytes.
func TestDatabaseHoldsHashesOnly(t *testing.T) {
	dir := t.TempDir()
	p := newConfigured(t, map[string]any{"path": filepath.Join(dir, "tokens.db")})
	tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "alice", Description: "findable-description"})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	raw, err := ParseToken(tok.Token)
	if err != nil {
		t.Fatalf("ParseToken(created token): %v", err)
	}
	var all []byte
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte("findable-description")) || !bytes.Contains(all, hashToken(raw)) {
		t.Fatalf("the database files do not hold the token's record; the search below would prove nothing")
	}
	for what, needle := range map[string][]byte{"plaintext": []byte(tok.Token), "random part": []byte(tok.Token[4:]), "raw bytes": raw} {
		if bytes.Contains(all, needle) {
			t.Errorf("the database files contain the token's %s", what)
		}
	}
}

func TestTokensSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	first := newConfigured(t, map[string]any{"path": path})
	tok, err := first.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "alice", Roles: []string{"viewer"}})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	second := newConfigured(t, map[string]any{"path": path})
	id, err := second.Authenticate(ctx, bearer(tok.Token))
	if err != nil || !id.Authenticated() || id.Name != "alice" || id.Attributes["token_id"] != tok.Meta.ID {
		t.Fatalf("after a restart Authenticate = %+v, %v; want alice with token id %s", id, err, tok.Meta.ID)
	}
}

func TestBootstrapToken(t *testing.T) {
	boot, _, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	p := newConfigured(t, map[string]any{"path": filepath.Join(t.TempDir(), "t.db"), "bootstrap_token": boot})
	id, err := p.Authenticate(ctx, bearer(boot))
	if err != nil {
		t.Fatalf("Authenticate(bootstrap): %v", err)
	}
	if !id.Authenticated() || id.Name != BootstrapOwner || len(id.Roles) != 1 || id.Roles[0] != "admin" {
		t.Fatalf("bootstrap identity = %+v, want %s with role admin", id, BootstrapOwner)
	}
	other, _, _ := newToken()
	if id, err := p.Authenticate(ctx, bearer(other)); err != nil || id.Status != authentication.StatusUnknown {
		t.Fatalf("another well-formed token = %+v, %v; want unknown", id, err)
	}
	items, err := p.ListTokens(ctx, "")
	if err != nil || len(items) != 0 {
		t.Fatalf("the bootstrap token is listed or stored: %v, %v", items, err)
	}
}

func TestOtherSchemesAreUnknown(t *testing.T) {
	p := newConfigured(t, map[string]any{"path": filepath.Join(t.TempDir(), "t.db")})
	tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Authenticate(ctx, &authentication.AuthenticateRequest{Scheme: "basic", Credentials: tok.Token})
	if err != nil || id.Status != authentication.StatusUnknown {
		t.Fatalf("a token sent as basic credentials = %+v, %v; want unknown", id, err)
	}
	id, err = p.Authenticate(ctx, &authentication.AuthenticateRequest{Scheme: "Bearer", Credentials: tok.Token})
	if err != nil || !id.Authenticated() {
		t.Fatalf("scheme Bearer (capitalised) = %+v, %v; want authenticated", id, err)
	}
}

func TestEmptyConfigWorks(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	p := newConfigured(t, map[string]any{})
	tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "alice"})
	if err != nil {
		t.Fatalf("CreateToken with the default path: %v", err)
	}
	if id, err := p.Authenticate(ctx, bearer(tok.Token)); err != nil || !id.Authenticated() {
		t.Fatalf("Authenticate = %+v, %v", id, err)
	}
	if _, err := os.Stat(DefaultPath()); err != nil {
		t.Fatalf("no database at the default path: %v", err)
	}
}

func TestBadConfigIsDiagnosedAndKeepsThePrevious(t *testing.T) {
	dir := t.TempDir()
	p := newConfigured(t, map[string]any{"path": filepath.Join(dir, "t.db")})
	tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretish := "pvt_short-and-secret"
	for _, tc := range []struct {
		name  string
		cfg   map[string]any
		field string
	}{
		{"path is a number", map[string]any{"path": 3}, "config.path"},
		{"path is empty", map[string]any{"path": ""}, "config.path"},
		{"path cannot be created", map[string]any{"path": filepath.Join(notADir, "t.db")}, "config.path"},
		{"unknown setting", map[string]any{"pth": "x"}, "config.pth"},
		{"malformed bootstrap token", map[string]any{"bootstrap_token": secretish}, "config.bootstrap_token"},
	} {
		resp, err := p.Configure(ctx, &sdk.ConfigureRequest{Config: tc.cfg})
		if err != nil {
			t.Fatalf("%s: Configure error %v, want diagnostics", tc.name, err)
		}
		if !sdk.HasErrors(resp.Diagnostics) || resp.Diagnostics[0].Field != tc.field {
			t.Fatalf("%s: diagnostics %+v, want an error about %s", tc.name, resp.Diagnostics, tc.field)
		}
		for _, d := range resp.Diagnostics {
			if strings.Contains(d.Summary+d.Detail, secretish) {
				t.Fatalf("%s: a diagnostic repeats the bootstrap token", tc.name)
			}
		}
	}
	if id, err := p.Authenticate(ctx, bearer(tok.Token)); err != nil || !id.Authenticated() {
		t.Fatalf("after rejected configurations the plugin lost its database: %+v, %v", id, err)
	}
}

func TestUnconfiguredPluginSaysSo(t *testing.T) {
	_, err := New().Authenticate(ctx, bearer("pvt_x"))
	if !errors.Is(err, sdk.ErrFailedPrecondition) {
		t.Fatalf("Authenticate before Configure: error = %v, want sdk.ErrFailedPrecondition", err)
	}
}

func TestParseTokenRoundTrip(t *testing.T) {
	tok, _, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ParseToken(tok)
	if err != nil {
		t.Fatalf("ParseToken(%q): %v", tok, err)
	}
	if FormatToken(raw) != tok {
		t.Fatalf("FormatToken(ParseToken(t)) != t")
	}
	for _, bad := range []string{"", "pvt_", tok[:len(tok)-1], tok + "A", "pvx_" + tok[4:], "pvt_" + strings.Repeat("=", 43), "pvt_" + strings.Repeat("+", 43)} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted a malformed token", bad)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	tok, _, _ := newToken()
	f.Add(tok)
	f.Add("pvt_")
	f.Add("pvt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Add("pvt_" + strings.Repeat("_", 43))
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := ParseToken(s)
		if err != nil {
			return
		}
		if len(raw) != tokenBytes {
			t.Fatalf("ParseToken(%q) returned %d bytes", s, len(raw))
		}
		if FormatToken(raw) != s {
			t.Fatalf("ParseToken accepted %q, which is not the canonical %q", s, FormatToken(raw))
		}
	})
}
