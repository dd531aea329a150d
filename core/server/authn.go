package server

// Authentication and authorization of API requests: the remote address,
// the throttle of failed tokens, and the rules decided before the
// authorization plugin (a per-run token reaches its own run only).

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
)

// Rules the server decides with before the authorization plugin is asked.
const (
	// RuleRunTokenScope denies a per-run token anything but its own run.
	RuleRunTokenScope = "run-token-scope"
)

// remoteKey carries the request's remote address to the authenticator.
type remoteKey struct{}

// withRemote puts the host of the request's remote address in its
// context. Behind a reverse proxy every request has the proxy's address.
func withRemote(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), remoteKey{}, host)))
	})
}

// Failed authentication throttling.
const (
	// FreeAuthFailures is how many unknown tokens an address may present
	// before it is slowed down.
	FreeAuthFailures = 5
	// authFailureWindow is how long failures are remembered.
	authFailureWindow = 15 * time.Minute
	// maxAuthLockout caps the wait.
	maxAuthLockout = 5 * time.Minute
)

// throttle slows down addresses that present unknown tokens: after
// FreeAuthFailures of them, every request of the address is refused with
// 429 for a time that doubles with each further failure (1s, 2s, 4s... up
// to 5 minutes).
type throttle struct {
	mu  sync.Mutex
	m   map[string]*failures
	now func() time.Time
}

type failures struct {
	n     int
	last  time.Time
	until time.Time
}

func newThrottle() *throttle { return &throttle{m: map[string]*failures{}, now: time.Now} }

func (t *throttle) check(addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[addr]
	if f == nil {
		return nil
	}
	if wait := f.until.Sub(t.now()); wait > 0 {
		return sdk.Errorf(sdk.ErrResourceExhausted, "", "too many failed authentications from %s: try again in %s", addr, wait.Round(time.Second)+time.Second)
	}
	return nil
}

func (t *throttle) fail(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) > 10000 {
		for k, f := range t.m {
			if now.Sub(f.last) > authFailureWindow {
				delete(t.m, k)
			}
		}
	}
	f := t.m[addr]
	if f == nil || now.Sub(f.last) > authFailureWindow {
		f = &failures{}
		t.m[addr] = f
	}
	f.n++
	f.last = now
	if over := f.n - FreeAuthFailures; over > 0 {
		wait := maxAuthLockout
		if over <= 10 {
			wait = min(time.Second<<(over-1), maxAuthLockout)
		}
		f.until = now.Add(wait)
	}
}

// authn authenticates API requests with the authentication plugin, and
// slows down addresses that guess.
type authn struct {
	mgr      *pluginhost.Manager
	plugin   string // the authentication plugin chosen
	throttle *throttle
}

// Authenticate returns the token's identity: authenticated, or with the
// status that says why not (expired, revoked, unknown).
func (a *authn) Authenticate(ctx context.Context, token string) (*authentication.Identity, error) {
	addr, _ := ctx.Value(remoteKey{}).(string)
	if err := a.throttle.check(addr); err != nil {
		return nil, err
	}
	p, err := a.mgr.Plugin(a.plugin)
	if err != nil {
		return nil, err
	}
	c, err := pluginhost.Client[authentication.Authentication](ctx, p, sdk.CategoryAuthentication)
	if err != nil {
		return nil, err
	}
	id, err := c.Authenticate(ctx, &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: token, RemoteAddr: addr})
	if err != nil {
		if errors.Is(err, sdk.ErrInvalidArgument) || errors.Is(err, sdk.ErrUnauthenticated) {
			a.throttle.fail(addr)
		}
		return nil, err
	}
	if id == nil || id.Status == authentication.StatusUnknown || id.Status == authentication.StatusUnspecified {
		a.throttle.fail(addr)
		return authentication.Unknown(), nil
	}
	return id, nil
}

// runScope returns the one resource a per-run token may reach.
func runScope(id *authentication.Identity) (string, bool) {
	if id == nil || !strings.HasPrefix(id.Name, "run:") {
		return "", false
	}
	return id.Name, true
}

// scoped keeps per-run tokens inside their run before the authorization
// plugin decides.
type scoped struct{ next api.Authorizer }

func (a scoped) Authorize(ctx context.Context, id *authentication.Identity, res, method string) (*authorization.Decision, error) {
	if scope, ok := runScope(id); ok && res != scope && res != "identity:self" {
		return &authorization.Decision{Allowed: false, Rule: RuleRunTokenScope, Effect: authorization.EffectDeny,
			Reason: "a per-run token reaches its own run only (" + scope + ")"}, nil
	}
	return a.next.Authorize(ctx, id, res, method)
}

// authz authorizes API requests with the authorization plugin and logs
// every decision with the rule that decided.
type authz struct {
	mgr    *pluginhost.Manager
	plugin string // the authorization plugin chosen
	log    hclog.Logger
}

func (a *authz) Authorize(ctx context.Context, id *authentication.Identity, resource, method string) (*authorization.Decision, error) {
	p, err := a.mgr.Plugin(a.plugin)
	if err != nil {
		return nil, err
	}
	c, err := pluginhost.Client[authorization.Authorization](ctx, p, sdk.CategoryAuthorization)
	if err != nil {
		return nil, err
	}
	d, err := c.Authorize(ctx, &authorization.AuthorizeRequest{Identity: id, Resource: resource, Method: method})
	if err != nil {
		return nil, err
	}
	a.log.Debug("decision", "identity", id.Name, "resource", resource, "method", method, "allowed", d.Allowed, "rule", d.Rule)
	return d, nil
}
