package authorization

import (
	"github.com/palvella/palvella/plugin-sdk/authentication"
	authorizationv1 "github.com/palvella/palvella/proto/palvella/authorization/v1"
)

func authorizeRequestToProto(r *AuthorizeRequest) *authorizationv1.AuthorizeRequest {
	return &authorizationv1.AuthorizeRequest{Identity: authentication.IdentityToProto(r.Identity), Resource: r.Resource, Method: r.Method}
}

func authorizeRequestFromProto(r *authorizationv1.AuthorizeRequest) *AuthorizeRequest {
	return &AuthorizeRequest{Identity: authentication.IdentityFromProto(r.GetIdentity()), Resource: r.GetResource(), Method: r.GetMethod()}
}

func decisionToProto(d *Decision) *authorizationv1.AuthorizeResponse {
	return &authorizationv1.AuthorizeResponse{Allowed: d.Allowed, Rule: d.Rule, Effect: authorizationv1.Effect(d.Effect), Reason: d.Reason}
}

func decisionFromProto(r *authorizationv1.AuthorizeResponse) *Decision {
	return &Decision{Allowed: r.GetAllowed(), Rule: r.GetRule(), Effect: Effect(r.GetEffect()), Reason: r.GetReason()}
}
