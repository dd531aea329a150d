package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
)

// AuthenticationSuite is the conformance suite of authentication plugins.
// Each subtest gets a fresh plugin from newPlugin, configured and, for
// token issuers, without tokens.
//
// Plugins that implement authentication.TokenIssuer (found by type
// assertion, and over gRPC by a ListTokens that does not answer
// sdk.ErrUnimplemented) also run the token subtests; their tokens are
// presented with the scheme "bearer".
func AuthenticationSuite(t *testing.T, newPlugin Factory[authentication.Authentication]) {
	ctx := context.Background()

	t.Run("describe", func(t *testing.T) {
		checkManifest(t, newPlugin(t), sdk.CategoryAuthentication)
	})

	t.Run("unknown credentials are an unknown identity, not an error", func(t *testing.T) {
		p := newPlugin(t)
		for _, creds := range []string{randomString(t, "pvt_"), randomString(t, ""), "not a token at all", "pvt_", strings.Repeat("x", 4096)} {
			id, err := p.Authenticate(ctx, &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: creds})
			if err != nil {
				t.Fatalf("Authenticate(unknown %d-byte credentials): %v", len(creds), err)
			}
			if id == nil || id.Status != authentication.StatusUnknown {
				t.Fatalf("Authenticate(unknown credentials) = %+v, want status unknown", id)
			}
			if id.Authenticated() || len(id.Roles) != 0 {
				t.Fatalf("unknown credentials got an identity that may act: %+v", id)
			}
		}
	})

	t.Run("empty credentials are invalid", func(t *testing.T) {
		p := newPlugin(t)
		_, err := p.Authenticate(ctx, &authentication.AuthenticateRequest{Scheme: "bearer"})
		assertInvalid(t, "Authenticate without credentials", err, "credentials")
	})

	t.Run("cancelled context", func(t *testing.T) {
		p := newPlugin(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := p.Authenticate(cctx, &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: randomString(t, "pvt_")})
		assertCancelled(t, err)
	})

	issuer, ok := issuerOf(t, newPlugin)
	if !ok {
		t.Logf("%s: not a token issuer; token subtests not applicable", t.Name())
		return
	}
	tokenSuite(t, issuer)
}

// issuerOf reports whether the plugin issues tokens, and returns a factory
// of issuers if it does.
func issuerOf(t *testing.T, newPlugin Factory[authentication.Authentication]) (func(t *testing.T) issuerPlugin, bool) {
	var probed bool
	t.Run("token capability", func(t *testing.T) {
		p := newPlugin(t)
		ti, ok := p.(authentication.TokenIssuer)
		if !ok {
			return
		}
		_, err := ti.ListTokens(context.Background(), "")
		switch {
		case errors.Is(err, sdk.ErrUnimplemented):
		case err != nil:
			t.Fatalf("ListTokens on a fresh plugin: %v", err)
		default:
			probed = true
		}
	})
	if !probed {
		return nil, false
	}
	return func(t *testing.T) issuerPlugin {
		p := newPlugin(t)
		return issuerPlugin{p, p.(authentication.TokenIssuer)}
	}, true
}

type issuerPlugin struct {
	authentication.Authentication
	authentication.TokenIssuer
}

func tokenSuite(t *testing.T, newIssuer func(t *testing.T) issuerPlugin) {
	ctx := context.Background()
	bearer := func(tok string) *authentication.AuthenticateRequest {
		return &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: tok}
	}

	t.Run("a created token authenticates as its owner", func(t *testing.T) {
		p := newIssuer(t)
		tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{
			Owner: "alice", Description: "laptop", Roles: []string{"developer"}, Namespaces: []string{"team-a"}, ExpiresIn: time.Hour,
		})
		if err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		if tok.Token == "" || tok.Meta.ID == "" {
			t.Fatalf("CreateToken returned no token or id: %+v", tok.Meta)
		}
		if tok.Meta.Owner != "alice" || tok.Meta.Description != "laptop" || tok.Meta.Revoked() {
			t.Fatalf("CreateToken metadata = %+v, want owner alice, description laptop, not revoked", tok.Meta)
		}
		if tok.Meta.ExpiresAt.IsZero() || tok.Meta.CreatedAt.IsZero() {
			t.Fatalf("CreateToken metadata lacks creation or expiry time: %+v", tok.Meta)
		}
		id, err := p.Authenticate(ctx, bearer(tok.Token))
		if err != nil {
			t.Fatalf("Authenticate(new token): %v", err)
		}
		if !id.Authenticated() || id.Name != "alice" {
			t.Fatalf("Authenticate(new token) = %+v, want alice, authenticated", id)
		}
		if !slices.Equal(id.Roles, []string{"developer"}) || !slices.Equal(id.Namespaces, []string{"team-a"}) {
			t.Fatalf("identity roles %v namespaces %v, want [developer] [team-a]", id.Roles, id.Namespaces)
		}
		if id.ExpiresAt.IsZero() {
			t.Fatalf("identity of an expiring token has no ExpiresAt")
		}
	})

	t.Run("a token without a lifetime does not expire", func(t *testing.T) {
		p := newIssuer(t)
		tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "ci"})
		if err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		if !tok.Meta.ExpiresAt.IsZero() {
			t.Fatalf("token without a lifetime expires at %v", tok.Meta.ExpiresAt)
		}
		if id, err := p.Authenticate(ctx, bearer(tok.Token)); err != nil || !id.Authenticated() {
			t.Fatalf("Authenticate = %+v, %v; want authenticated", id, err)
		}
	})

	t.Run("every token is different", func(t *testing.T) {
		p := newIssuer(t)
		seen := map[string]bool{}
		ids := map[string]bool{}
		for range 5 {
			tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "ci"})
			if err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
			if seen[tok.Token] || ids[tok.Meta.ID] {
				t.Fatalf("CreateToken returned a token or id twice")
			}
			seen[tok.Token], ids[tok.Meta.ID] = true, true
		}
	})

	t.Run("a revoked token authenticates as revoked", func(t *testing.T) {
		p := newIssuer(t)
		tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "bob", Roles: []string{"admin"}})
		if err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		other, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "bob"})
		if err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		meta, err := p.RevokeToken(ctx, tok.Meta.ID)
		if err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		if !meta.Revoked() || meta.ID != tok.Meta.ID {
			t.Fatalf("RevokeToken returned %+v, want the token, revoked", meta)
		}
		id, err := p.Authenticate(ctx, bearer(tok.Token))
		if err != nil {
			t.Fatalf("Authenticate(revoked token): %v", err)
		}
		if id.Status != authentication.StatusRevoked || id.Authenticated() {
			t.Fatalf("Authenticate(revoked token) status = %v, want revoked", id.Status)
		}
		if id, err := p.Authenticate(ctx, bearer(other.Token)); err != nil || !id.Authenticated() {
			t.Fatalf("revoking one token affected another: %+v, %v", id, err)
		}
		if _, err := p.RevokeToken(ctx, tok.Meta.ID); err != nil {
			t.Fatalf("revoking a revoked token again: %v", err)
		}
		if _, err := p.RevokeToken(ctx, "no-such-token"); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("RevokeToken(unknown id) error = %v, want sdk.ErrNotFound", err)
		}
	})

	t.Run("an expired token authenticates as expired", func(t *testing.T) {
		p := newIssuer(t)
		tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "carol", ExpiresIn: time.Millisecond})
		if err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		if tok.Meta.ExpiresAt.IsZero() {
			t.Fatalf("CreateToken with a lifetime returned no expiry")
		}
		// Wait until the token's own expiry has passed; nothing is asserted
		// about how long that takes.
		time.Sleep(time.Until(tok.Meta.ExpiresAt) + 20*time.Millisecond)
		id, err := p.Authenticate(ctx, bearer(tok.Token))
		if err != nil {
			t.Fatalf("Authenticate(expired token): %v", err)
		}
		if id.Status != authentication.StatusExpired || id.Authenticated() {
			t.Fatalf("Authenticate(expired token) status = %v, want expired", id.Status)
		}
	})

	t.Run("list shows metadata, never the token", func(t *testing.T) {
		p := newIssuer(t)
		var plaintexts []string
		for _, owner := range []string{"alice", "bob", "alice"} {
			tok, err := p.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: owner, Description: "for " + owner})
			if err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
			plaintexts = append(plaintexts, tok.Token)
		}
		all, err := p.ListTokens(ctx, "")
		if err != nil {
			t.Fatalf("ListTokens: %v", err)
		}
		if len(all) != 3 {
			t.Fatalf("ListTokens returned %d tokens, want 3", len(all))
		}
		alice, err := p.ListTokens(ctx, "alice")
		if err != nil {
			t.Fatalf("ListTokens(alice): %v", err)
		}
		if len(alice) != 2 || alice[0].Owner != "alice" || alice[1].Owner != "alice" {
			t.Fatalf("ListTokens(alice) = %+v, want alice's two tokens", alice)
		}
		dump, _ := json.Marshal(all)
		printed := fmt.Sprintf("%+v %s", all, dump)
		for _, pt := range plaintexts {
			if strings.Contains(printed, pt) || strings.Contains(printed, pt[len(pt)/2:]) {
				t.Fatalf("ListTokens shows a token's plaintext")
			}
		}
	})

	t.Run("bad token requests name the field and create nothing", func(t *testing.T) {
		p := newIssuer(t)
		for _, tc := range []struct {
			name  string
			req   authentication.CreateTokenRequest
			field string
		}{
			{"no owner", authentication.CreateTokenRequest{}, "owner"},
			{"negative lifetime", authentication.CreateTokenRequest{Owner: "x", ExpiresIn: -time.Hour}, "expiresIn"},
			{"empty role", authentication.CreateTokenRequest{Owner: "x", Roles: []string{""}}, "roles[0]"},
		} {
			_, err := p.CreateToken(ctx, &tc.req)
			assertInvalid(t, tc.name, err, tc.field)
		}
		_, err := p.RevokeToken(ctx, "")
		assertInvalid(t, "RevokeToken without an id", err, "id")
		items, err := p.ListTokens(ctx, "")
		if err != nil {
			t.Fatalf("ListTokens: %v", err)
		}
		if len(items) != 0 {
			t.Fatalf("rejected requests left %d tokens behind", len(items))
		}
	})

	t.Run("cancelled create issues nothing", func(t *testing.T) {
		p := newIssuer(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := p.CreateToken(cctx, &authentication.CreateTokenRequest{Owner: "late"})
		assertCancelled(t, err)
		items, err := p.ListTokens(ctx, "")
		if err != nil {
			t.Fatalf("ListTokens: %v", err)
		}
		if len(items) != 0 {
			t.Fatalf("a cancelled CreateToken issued a token")
		}
	})
}

// randomString returns prefix and 32 random hex digits: credentials no
// plugin knows.
func randomString(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return prefix + hex.EncodeToString(b)
}
