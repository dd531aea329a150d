package sdktest

import (
	"context"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// AuthorizationCase is one question for an authorization plugin and the
// answer its configuration must give.
type AuthorizationCase struct {
	Name    string
	Request authorization.AuthorizeRequest
	Allowed bool
}

// AuthorizationFixture is what a plugin's own test tells the suite about
// the configuration its factory applies: requests that configuration
// allows and requests it denies. The suite needs at least one of each.
type AuthorizationFixture struct {
	Cases []AuthorizationCase
}

// AuthorizationSuite returns the conformance suite of authorization
// plugins, checked against fx. Each subtest gets a fresh plugin from the
// factory, configured as fx expects:
//
//	sdktest.RunBoth(t, newRBAC, authorization.Service, sdktest.AuthorizationSuite(fx))
func AuthorizationSuite(fx AuthorizationFixture) Suite[authorization.Authorization] {
	return func(t *testing.T, newPlugin Factory[authorization.Authorization]) {
		authorizationSuite(t, newPlugin, fx)
	}
}

func authorizationSuite(t *testing.T, newPlugin Factory[authorization.Authorization], fx AuthorizationFixture) {
	ctx := context.Background()
	var allowed, denied int
	for _, c := range fx.Cases {
		if c.Allowed {
			allowed++
		} else {
			denied++
		}
	}
	if allowed == 0 || denied == 0 {
		t.Fatalf("the fixture has %d allowed and %d denied cases; the suite needs at least one of each", allowed, denied)
	}

	t.Run("describe", func(t *testing.T) {
		checkManifest(t, newPlugin(t), sdk.CategoryAuthorization)
	})

	t.Run("decisions match the configuration and name the rule", func(t *testing.T) {
		p := newPlugin(t)
		for _, c := range fx.Cases {
			d, err := p.Authorize(ctx, &c.Request)
			if err != nil {
				t.Errorf("%s: Authorize: %v", c.Name, err)
				continue
			}
			if d.Allowed != c.Allowed {
				t.Errorf("%s: allowed = %v, want %v (rule %q, reason %q)", c.Name, d.Allowed, c.Allowed, d.Rule, d.Reason)
				continue
			}
			switch {
			case d.Allowed && (d.Effect != authorization.EffectAllow || d.Rule == ""):
				t.Errorf("%s: an allow must come from an Allow rule and name it; got effect %v rule %q", c.Name, d.Effect, d.Rule)
			case !d.Allowed && d.Effect == authorization.EffectAllow:
				t.Errorf("%s: denied with effect Allow", c.Name)
			case !d.Allowed && d.Effect == authorization.EffectDeny && d.Rule == "":
				t.Errorf("%s: denied by a Deny rule that is not named", c.Name)
			}
			if d.Reason == "" {
				t.Errorf("%s: decision has no reason", c.Name)
			}
		}
	})

	t.Run("identities that are not authenticated are never allowed", func(t *testing.T) {
		p := newPlugin(t)
		for _, c := range fx.Cases {
			if !c.Allowed {
				continue
			}
			for _, st := range []authentication.Status{authentication.StatusRevoked, authentication.StatusExpired, authentication.StatusUnknown} {
				id := *c.Request.Identity
				id.Status = st
				req := c.Request
				req.Identity = &id
				d, err := p.Authorize(ctx, &req)
				if err != nil {
					t.Errorf("%s as %v: Authorize: %v", c.Name, st, err)
					continue
				}
				if d.Allowed {
					t.Errorf("%s: an identity with status %v was allowed (rule %q)", c.Name, st, d.Rule)
				}
			}
		}
	})

	t.Run("bad input names the field", func(t *testing.T) {
		p := newPlugin(t)
		var base authorization.AuthorizeRequest
		for _, c := range fx.Cases {
			if c.Allowed {
				base = c.Request
				break
			}
		}
		noResource, noMethod, noIdentity := base, base, base
		noResource.Resource = ""
		noMethod.Method = ""
		noIdentity.Identity = nil
		_, err := p.Authorize(ctx, &noResource)
		assertInvalid(t, "Authorize without a resource", err, "resource")
		_, err = p.Authorize(ctx, &noMethod)
		assertInvalid(t, "Authorize without a method", err, "method")
		_, err = p.Authorize(ctx, &noIdentity)
		assertInvalid(t, "Authorize without an identity", err, "identity")
	})

	t.Run("cancelled context", func(t *testing.T) {
		p := newPlugin(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		for _, c := range fx.Cases {
			if c.Allowed {
				_, err := p.Authorize(cctx, &c.Request)
				assertCancelled(t, err)
				return
			}
		}
	})
}
