package authentication

import (
	"time"

	authenticationv1 "github.com/palvella/palvella/proto/palvella/authentication/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The functions in this file convert between the Go types of this package
// and their wire form. IdentityToProto and IdentityFromProto are exported
// for the authorization shims, which carry an identity; plugin authors do
// not need them.

// IdentityToProto converts an identity for the wire. nil stays nil.
func IdentityToProto(i *Identity) *authenticationv1.Identity {
	if i == nil {
		return nil
	}
	return &authenticationv1.Identity{
		Name: i.Name, Type: i.Type, Domain: i.Domain, Attributes: i.Attributes,
		Status: authenticationv1.IdentityStatus(i.Status), Roles: i.Roles, Namespaces: i.Namespaces,
		ExpiresAt: timeToProto(i.ExpiresAt),
	}
}

// IdentityFromProto converts an identity received over the wire. nil stays
// nil.
func IdentityFromProto(i *authenticationv1.Identity) *Identity {
	if i == nil {
		return nil
	}
	return &Identity{
		Name: i.GetName(), Type: i.GetType(), Domain: i.GetDomain(), Attributes: i.GetAttributes(),
		Status: Status(i.GetStatus()), Roles: i.GetRoles(), Namespaces: i.GetNamespaces(),
		ExpiresAt: timeFromProto(i.GetExpiresAt()),
	}
}

func authenticateRequestToProto(r *AuthenticateRequest) *authenticationv1.AuthenticateRequest {
	return &authenticationv1.AuthenticateRequest{Scheme: r.Scheme, Credentials: r.Credentials, Headers: r.Headers, RemoteAddr: r.RemoteAddr}
}

func authenticateRequestFromProto(r *authenticationv1.AuthenticateRequest) *AuthenticateRequest {
	return &AuthenticateRequest{Scheme: r.GetScheme(), Credentials: r.GetCredentials(), Headers: r.GetHeaders(), RemoteAddr: r.GetRemoteAddr()}
}

func createTokenRequestToProto(r *CreateTokenRequest) *authenticationv1.CreateTokenRequest {
	out := &authenticationv1.CreateTokenRequest{Owner: r.Owner, Description: r.Description, Roles: r.Roles, Namespaces: r.Namespaces}
	if r.ExpiresIn != 0 {
		out.ExpiresIn = durationpb.New(r.ExpiresIn)
	}
	return out
}

func createTokenRequestFromProto(r *authenticationv1.CreateTokenRequest) *CreateTokenRequest {
	out := &CreateTokenRequest{Owner: r.GetOwner(), Description: r.GetDescription(), Roles: r.GetRoles(), Namespaces: r.GetNamespaces()}
	if r.GetExpiresIn() != nil {
		out.ExpiresIn = r.GetExpiresIn().AsDuration()
	}
	return out
}

func tokenMetaToProto(m *TokenMeta) *authenticationv1.TokenMeta {
	return &authenticationv1.TokenMeta{
		Id: m.ID, Owner: m.Owner, Description: m.Description, Roles: m.Roles, Namespaces: m.Namespaces,
		CreatedAt: timeToProto(m.CreatedAt), ExpiresAt: timeToProto(m.ExpiresAt), RevokedAt: timeToProto(m.RevokedAt),
	}
}

func tokenMetaFromProto(m *authenticationv1.TokenMeta) TokenMeta {
	return TokenMeta{
		ID: m.GetId(), Owner: m.GetOwner(), Description: m.GetDescription(), Roles: m.GetRoles(), Namespaces: m.GetNamespaces(),
		CreatedAt: timeFromProto(m.GetCreatedAt()), ExpiresAt: timeFromProto(m.GetExpiresAt()), RevokedAt: timeFromProto(m.GetRevokedAt()),
	}
}

// timeToProto sends the zero time as an unset timestamp.
func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}
