package types

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// IdentityStatus says what a request's credentials turned out to be.
type IdentityStatus int

// Identity statuses. Only StatusAuthenticated means the request may act as
// the identity.
const (
	StatusUnspecified IdentityStatus = iota
	StatusAuthenticated
	StatusUnknown
	StatusExpired
	StatusRevoked
)

var statusNames = [...]string{"unspecified", "authenticated", "unknown", "expired", "revoked"}

func (s IdentityStatus) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("status(%d)", int(s))
	}
	return statusNames[s]
}

// ParseIdentityStatus parses a status name such as "revoked". Its error
// is ErrInvalidArgument to errors.Is.
func ParseIdentityStatus(s string) (IdentityStatus, error) {
	for i, name := range statusNames {
		if strings.EqualFold(s, name) {
			return IdentityStatus(i), nil
		}
	}
	return StatusUnspecified, fmt.Errorf("%w: unknown identity status %q (want one of %s)", ErrInvalidArgument, s, strings.Join(statusNames[1:], ", "))
}

// MarshalJSON writes the status's name.
func (s IdentityStatus) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a status name.
func (s *IdentityStatus) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return fmt.Errorf("identity status must be a string: %w", err)
	}
	v, err := ParseIdentityStatus(name)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Identity is who a request acts as.
type Identity struct {
	// Name of the user, service account or token owner.
	Name string `json:"name"`
	// Type such as "user", "token", "run".
	Type string `json:"type,omitempty"`
	// Domain the name belongs to, such as the plugin or identity provider.
	Domain     string            `json:"domain,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Status     IdentityStatus    `json:"status"`
	// Roles granted to the identity, for the authorization plugin.
	Roles []string `json:"roles,omitempty"`
	// Namespaces the identity is limited to; empty means not limited.
	Namespaces []string `json:"namespaces,omitempty"`
	// ExpiresAt is when the credentials stop working; zero if never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Authenticated reports whether the request may act as the identity.
func (i *Identity) Authenticated() bool { return i != nil && i.Status == StatusAuthenticated }

// TokenMeta is what may be shown of an API token: never its value.
type TokenMeta struct {
	ID          string    `json:"id"`
	Owner       string    `json:"owner"`
	Description string    `json:"description,omitempty"`
	Roles       []string  `json:"roles,omitempty"`
	Namespaces  []string  `json:"namespaces,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	// ExpiresAt is zero when the token does not expire.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// RevokedAt is zero unless the token was revoked.
	RevokedAt time.Time `json:"revokedAt,omitzero"`
}

// Revoked reports whether the token was revoked.
func (m *TokenMeta) Revoked() bool { return !m.RevokedAt.IsZero() }

// CredentialMeta is what may be shown of a credential: never its values.
type CredentialMeta struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
}
