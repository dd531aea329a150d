// Package authorization is the contract of authorization plugins: given an
// identity, a resource and a method, they decide allow or deny and name the
// rule that decided, for the audit log.
//
// Resources are written "kind:name", with the namespace first in the name
// of namespaced kinds: "pipeline:default/deploy", "run:default/deploy/42",
// "credential:ci-key" (a global credential), "credential:team-a/db" (a
// credential of the namespace team-a). Methods are read, write, run,
// approve, use (having a pipeline use a credential) and credentialRead
// (reading a credential's values, not just its metadata).
package authorization

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
	authorizationv1 "github.com/palvella/palvella/proto/palvella/authorization/v1"
	"google.golang.org/grpc"
)

// The methods the core asks about.
const (
	MethodRead           = "read"
	MethodWrite          = "write"
	MethodRun            = "run"
	MethodApprove        = "approve"
	MethodCredentialRead = "credentialRead"
	// MethodUse is having a pipeline use a credential ({from_credential:
	// NAME}): asked for the identity that applies or starts the pipeline.
	// It does not reveal the value to the identity, only to the jobs.
	MethodUse = "use"
	// MethodLease is acting as a remote worker on "worker:<name>":
	// leasing jobs through the server and reporting them.
	MethodLease = "lease"
)

// Methods lists the methods the core asks about.
func Methods() []string {
	return []string{MethodRead, MethodWrite, MethodRun, MethodApprove, MethodUse, MethodCredentialRead, MethodLease}
}

// Authorization is implemented by authorization plugins.
type Authorization interface {
	sdk.Plugin
	// Authorize decides whether req.Identity may use req.Method on
	// req.Resource. A denial is a Decision, not an error; the error is for
	// bad input (sdk.ErrInvalidArgument) and for failures of the plugin.
	Authorize(ctx context.Context, req *AuthorizeRequest) (*Decision, error)
}

// AuthorizeRequest asks whether an identity may use a method on a resource.
type AuthorizeRequest struct {
	Identity *authentication.Identity
	// Resource such as "pipeline:default/deploy" or "credential:ci-key".
	Resource string
	// Method such as "read" or "approve".
	Method string
}

// Validate rejects a request without an identity, resource or method.
func (r *AuthorizeRequest) Validate() error {
	switch {
	case r == nil || r.Identity == nil:
		return sdk.Errorf(sdk.ErrInvalidArgument, "identity", "no identity given")
	case strings.TrimSpace(r.Resource) == "":
		return sdk.Errorf(sdk.ErrInvalidArgument, "resource", "no resource given")
	case strings.TrimSpace(r.Method) == "":
		return sdk.Errorf(sdk.ErrInvalidArgument, "method", "no method given")
	}
	return nil
}

// Effect of a permission, and of the rule that decided.
type Effect int

// Effects. EffectUnspecified is the effect of a decision no rule made.
const (
	EffectUnspecified Effect = iota
	EffectAllow
	EffectDeny
)

var effectNames = [...]string{"Unspecified", "Allow", "Deny"}

func (e Effect) String() string {
	if e < 0 || int(e) >= len(effectNames) {
		return fmt.Sprintf("Effect(%d)", int(e))
	}
	return effectNames[e]
}

// ParseEffect parses "Allow" or "Deny", in any case.
func ParseEffect(s string) (Effect, error) {
	for _, e := range []Effect{EffectAllow, EffectDeny} {
		if strings.EqualFold(s, e.String()) {
			return e, nil
		}
	}
	return EffectUnspecified, sdk.Errorf(sdk.ErrInvalidArgument, "effect", "unknown effect %q (want Allow or Deny)", s)
}

// MarshalJSON writes the effect's name.
func (e Effect) MarshalJSON() ([]byte, error) { return json.Marshal(e.String()) }

// UnmarshalJSON reads "Allow" or "Deny".
func (e *Effect) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("effect must be a string: %w", err)
	}
	v, err := ParseEffect(s)
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// Decision answers Authorize.
type Decision struct {
	Allowed bool `json:"allowed"`
	// Rule names the rule that decided, for the audit log. It is empty
	// only when no rule matched, which denies.
	Rule   string `json:"rule,omitempty"`
	Effect Effect `json:"effect"`
	// Reason says why, for a person.
	Reason string `json:"reason,omitempty"`
}

// GRPCPlugin is the go-plugin plugin of this category. Impl is set on the
// plugin side only.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Authorization
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// Service registers impl as the plugin's authorization service, for
// sdk.Serve.
func Service(impl Authorization) sdk.Service {
	return sdk.Service{Category: sdk.CategoryAuthorization, Plugin: &GRPCPlugin{Impl: impl}}
}

// GRPCServer registers the authorization service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	authorizationv1.RegisterAuthorizationServiceServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns an Authorization that calls the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(broker, c), nil
}
