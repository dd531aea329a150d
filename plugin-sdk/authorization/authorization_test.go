package authorization_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	"github.com/palvella/palvella/plugin-sdk/authorization"
	"github.com/palvella/palvella/plugin-sdk/sdktest"
)

// funcAuthz is a test double whose decision is a function field.
type funcAuthz struct {
	decide func(req *authorization.AuthorizeRequest) *authorization.Decision
	seen   *authorization.AuthorizeRequest
}

func (f *funcAuthz) Describe(context.Context) (*sdk.Manifest, error) {
	return &sdk.Manifest{Name: "func", Version: "0.0.1", Categories: []sdk.Category{sdk.CategoryAuthorization}, ProtocolVersions: sdk.ProtocolVersions}, nil
}

func (f *funcAuthz) Configure(context.Context, *sdk.ConfigureRequest) (*sdk.ConfigureResponse, error) {
	return &sdk.ConfigureResponse{}, nil
}

func (f *funcAuthz) Authorize(ctx context.Context, req *authorization.AuthorizeRequest) (*authorization.Decision, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	f.seen = req
	return f.decide(req), nil
}

// readOnly allows authenticated identities to read, and nothing else.
func readOnly(t *testing.T) authorization.Authorization {
	return &funcAuthz{decide: func(req *authorization.AuthorizeRequest) *authorization.Decision {
		if req.Identity.Authenticated() && req.Method == authorization.MethodRead {
			return &authorization.Decision{Allowed: true, Rule: "read-only", Effect: authorization.EffectAllow, Reason: "everyone may read"}
		}
		return &authorization.Decision{Reason: "only reading is allowed"}
	}}
}

func TestConformanceOfADouble(t *testing.T) {
	who := &authentication.Identity{Name: "alice", Status: authentication.StatusAuthenticated}
	fx := sdktest.AuthorizationFixture{Cases: []sdktest.AuthorizationCase{
		{Name: "read", Request: authorization.AuthorizeRequest{Identity: who, Resource: "pipeline:default/a", Method: "read"}, Allowed: true},
		{Name: "write", Request: authorization.AuthorizeRequest{Identity: who, Resource: "pipeline:default/a", Method: "write"}},
	}}
	sdktest.RunBoth(t, readOnly, authorization.Service, sdktest.AuthorizationSuite(fx))
}

func TestRequestAndDecisionSurviveTheWire(t *testing.T) {
	want := &authorization.Decision{Allowed: false, Rule: "viewer.permissions[0]", Effect: authorization.EffectDeny, Reason: "viewers may not write"}
	impl := &funcAuthz{decide: func(*authorization.AuthorizeRequest) *authorization.Decision { return want }}
	c := sdktest.OverGRPC[authorization.Authorization](t, impl, authorization.Service)
	req := &authorization.AuthorizeRequest{
		Identity: &authentication.Identity{Name: "bob", Type: "token", Status: authentication.StatusAuthenticated, Roles: []string{"viewer"}, Namespaces: []string{"ns"}},
		Resource: "pipeline:ns/deploy", Method: "write",
	}
	got, err := c.Authorize(context.Background(), req)
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decision over gRPC = %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(impl.seen, req) {
		t.Fatalf("plugin saw request %+v, want %+v", impl.seen, req)
	}
}

func TestEffectJSON(t *testing.T) {
	var e authorization.Effect
	if err := json.Unmarshal([]byte(`"deny"`), &e); err != nil || e != authorization.EffectDeny {
		t.Fatalf("unmarshal deny = %v, %v", e, err)
	}
	if b, _ := json.Marshal(authorization.EffectAllow); string(b) != `"Allow"` {
		t.Fatalf("marshal Allow = %s", b)
	}
	if err := json.Unmarshal([]byte(`"Maybe"`), &e); !errors.Is(err, sdk.ErrInvalidArgument) {
		t.Fatalf("unmarshal Maybe: error = %v, want sdk.ErrInvalidArgument", err)
	}
}
