package database

import (
	"encoding/base64"
	"encoding/json"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// PageToken is the position after which a List's next page starts: the
// last resource of the page, as (namespace, name), the order List returns.
// A database plugin may use it for its page tokens; callers treat a token
// as opaque.
type PageToken struct {
	Namespace string `json:"n"`
	Name      string `json:"m"`
}

// EncodePageToken is the token of the page after r.
func EncodePageToken(r Resource) string {
	b, _ := json.Marshal(PageToken{Namespace: r.Key.Namespace, Name: r.Key.Name}) // two strings always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodePageToken reads a token EncodePageToken made; anything else is
// sdk.ErrInvalidArgument about pageToken.
func DecodePageToken(s string) (*PageToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var tok PageToken
	if err == nil {
		err = json.Unmarshal(b, &tok)
	}
	if err != nil || tok.Name == "" {
		return nil, sdk.Errorf(sdk.ErrInvalidArgument, "pageToken", "is not a page token returned by List")
	}
	return &tok, nil
}
