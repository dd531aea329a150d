package wire

import "github.com/palvella/palvella/plugin-sdk/types"

// Token is a token's metadata as the API shows it.
type Token struct {
	types.TokenMeta
	// Management marks the management token: the one a loopback server
	// keeps in cli.json, or the one `palvella token bootstrap` created.
	Management bool `json:"management,omitempty"`
}

// RotatedToken is a new management token, shown once.
type RotatedToken struct {
	NewToken
	Management bool `json:"management"`
	// Revoked are the ids of the management tokens revoked.
	Revoked []string `json:"revoked,omitempty"`
	// WroteCLIConfig says that the server wrote the new token into its
	// cli.json (a server on loopback).
	WroteCLIConfig bool `json:"wroteCLIConfig"`
}

// Credential is a credential's metadata as the API shows it: never its
// value.
type Credential struct {
	types.CredentialMeta
	// Namespace owns the credential; empty for a global one.
	Namespace string `json:"namespace,omitempty"`
	// Pipelines, when set, are the only pipelines that may use it.
	Pipelines []string `json:"pipelines,omitempty"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	// Name is who or what the token is for (its owner).
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	// Namespaces limits the token to these namespaces; empty is every
	// namespace the caller may reach.
	Namespaces []string `json:"namespaces,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty never expires.
	ExpiresIn string `json:"expiresIn,omitempty"`
}

// NewToken is a token just issued: the only time its value is shown.
type NewToken struct {
	Token string `json:"token"`
	types.TokenMeta
}

// CredentialRequest is the body of PUT /api/v1/credentials/{name}.
type CredentialRequest struct {
	// Type is what the credential is ("secret" when empty).
	Type string `json:"type,omitempty"`
	// Value is the credential's value, stored under the key "value".
	Value string `json:"value,omitempty"`
	// Data holds several keys; Value and Data may not both be set.
	Data   map[string]string `json:"data,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Namespace the credential belongs to; empty is global (allowed to
	// identities limited to no namespace only), or the only namespace of
	// a caller limited to one.
	Namespace string `json:"namespace,omitempty"`
	// Pipelines limits the credential to these pipelines of its namespace
	// ("<namespace>/<pipeline>" for a global credential); empty is every
	// pipeline.
	Pipelines []string `json:"pipelines,omitempty"`
	// KeepValue changes the namespace, pipelines, type or labels of an
	// existing credential and keeps its value; Value and Data must be
	// empty.
	KeepValue bool `json:"keepValue,omitempty"`
}
