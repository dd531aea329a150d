package authentication_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// staticAuth is a test double whose behaviour is a function field. It does
// not issue tokens.
type staticAuth struct {
	authenticate func(ctx context.Context, req *authentication.AuthenticateRequest) (*authentication.Identity, error)
}

func (s *staticAuth) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "static", Version: "0.0.1", Categories: []sdk.Category{sdk.CategoryAuthentication}, ProtocolVersions: sdk.ProtocolVersions}, nil
}

func (s *staticAuth) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

func (s *staticAuth) Authenticate(ctx context.Context, req *authentication.AuthenticateRequest) (*authentication.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return s.authenticate(ctx, req)
}

var alice = &authentication.Identity{
	Name: "alice", Type: "user", Domain: "static", Attributes: map[string]string{"email": "alice@example.com"},
	Status: authentication.StatusAuthenticated, Roles: []string{"developer", "viewer"}, Namespaces: []string{"team-a"},
	ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC),
}

func newStatic(t *testing.T) authentication.Authentication {
	return &staticAuth{authenticate: func(_ context.Context, req *authentication.AuthenticateRequest) (*authentication.Identity, error) {
		if req.Scheme == "bearer" && req.Credentials == "alice-secret" {
			return alice, nil
		}
		return authentication.Unknown(), nil
	}}
}

func TestConformanceOfANonIssuer(t *testing.T) {
	sdktest.RunBoth(t, newStatic, authentication.Service, sdktest.AuthenticationSuite)
}

func TestIdentitySurvivesTheWire(t *testing.T) {
	c := sdktest.OverGRPC(t, newStatic(t), authentication.Service)
	got, err := c.Authenticate(context.Background(), &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: "alice-secret"})
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if !reflect.DeepEqual(got, alice) {
		t.Fatalf("identity over gRPC = %+v, want %+v", got, alice)
	}
}

func TestTokenCallsToANonIssuerAreUnimplemented(t *testing.T) {
	c := sdktest.OverGRPC(t, newStatic(t), authentication.Service)
	issuer, ok := c.(authentication.TokenIssuer)
	if !ok {
		t.Fatalf("the gRPC client %T does not offer the token calls", c)
	}
	ctx := context.Background()
	_, err := issuer.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: "x"})
	if !errors.Is(err, sdk.ErrUnimplemented) {
		t.Errorf("CreateToken error = %v, want sdk.ErrUnimplemented", err)
	}
	if _, err := issuer.RevokeToken(ctx, "id"); !errors.Is(err, sdk.ErrUnimplemented) {
		t.Errorf("RevokeToken error = %v, want sdk.ErrUnimplemented", err)
	}
	if _, err := issuer.ListTokens(ctx, ""); !errors.Is(err, sdk.ErrUnimplemented) {
		t.Errorf("ListTokens error = %v, want sdk.ErrUnimplemented", err)
	}
}

func TestPluginErrorsKeepTheirKindOverTheWire(t *testing.T) {
	p := &staticAuth{authenticate: func(context.Context, *authentication.AuthenticateRequest) (*authentication.Identity, error) {
		return nil, sdk.Errorf(sdk.ErrFailedPrecondition, "path", "token database is closed")
	}}
	c := sdktest.OverGRPC[authentication.Authentication](t, p, authentication.Service)
	_, err := c.Authenticate(context.Background(), &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: "x"})
	var typed *sdk.Error
	if !errors.Is(err, sdk.ErrFailedPrecondition) || !errors.As(err, &typed) || typed.Field != "path" {
		t.Fatalf("error = %v, want sdk.ErrFailedPrecondition about path", err)
	}
}

func TestStatusJSON(t *testing.T) {
	for _, s := range []authentication.Status{authentication.StatusAuthenticated, authentication.StatusUnknown, authentication.StatusExpired, authentication.StatusRevoked} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal %v: %v", s, err)
		}
		var back authentication.Status
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("status %v went through JSON %s as %v, %v", s, b, back, err)
		}
	}
	var s authentication.Status
	if err := json.Unmarshal([]byte(`"sleepy"`), &s); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Fatalf("unknown status name: error = %v, want sdk.ErrInvalidArgument", err)
	}
}
