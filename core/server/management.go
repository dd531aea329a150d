package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/pluginhost"
	sdk "github.com/palvella/palvella/plugin-sdk"
	"github.com/palvella/palvella/plugin-sdk/authentication"
)

// The management token
//
// The management token is an ordinary token of the authentication plugin
// with the role admin, owned by ManagementOwner (a name no token created
// through the API can have), so that it is listed (marked "management"),
// revoked and rotated like any other. A loopback server keeps it in
// $PALVELLA_HOME/cli.json for the CLI of the same user; at every start it
// checks that the token there is a valid management token and, if it is
// not (missing, revoked, expired, or one from before management tokens
// were stored), issues a new one, revokes any other, and rewrites the
// file. A server beyond loopback gets its first one from bootstrap.

// ManagementOwner owns the management token.
const ManagementOwner = "palvella:management"

// BootstrapOwner is the owner of the token `palvella token bootstrap`
// creates: it is the management token of a server beyond loopback.
const BootstrapOwner = ManagementOwner

// issueManagement issues a new management token and revokes every other
// one that is still active.
func issueManagement(ctx context.Context, issuer authentication.TokenIssuer, description string) (*authentication.CreatedToken, []string, error) {
	t, err := issuer.CreateToken(ctx, &authentication.CreateTokenRequest{Owner: ManagementOwner, Description: description, Roles: []string{"admin"}})
	if err != nil {
		return nil, nil, fmt.Errorf("issue a management token: %w", err)
	}
	old, err := issuer.ListTokens(ctx, ManagementOwner)
	if err != nil {
		return nil, nil, fmt.Errorf("list the management tokens: %w", err)
	}
	var revoked []string
	for _, m := range old {
		if m.ID == t.Meta.ID || m.Revoked() {
			continue
		}
		if _, err := issuer.RevokeToken(ctx, m.ID); err != nil {
			return nil, nil, fmt.Errorf("revoke the management token %s: %w", m.ID, err)
		}
		revoked = append(revoked, m.ID)
	}
	return t, revoked, nil
}

// writeCLIConfig writes cli.json under home, mode 0600, through a
// temporary file so that a reader never sees half of it.
func writeCLIConfig(home string, cc CLIConfig) error {
	path := filepath.Join(home, CLIConfigFile)
	b, _ := json.MarshalIndent(cc, "", "  ") // two strings
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // an older .tmp kept its mode
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ensureManagementToken makes sure that the cli.json of a loopback server
// holds a valid management token, and returns a line to tell the person
// starting the server when it wrote a new one.
func ensureManagementToken(ctx context.Context, mgr *pluginhost.Manager, authPlugin, home, url string) (string, error) {
	p, err := mgr.Plugin(authPlugin)
	if err != nil {
		return "", err
	}
	c, err := pluginhost.Client[authentication.Authentication](ctx, p, sdk.CategoryAuthentication)
	if err != nil {
		return "", err
	}
	issuer, ok := c.(authentication.TokenIssuer)
	if !ok {
		return "", sdk.Errorf(sdk.ErrUnimplemented, "", "%s does not issue tokens", authPlugin)
	}
	path := filepath.Join(home, CLIConfigFile)
	var cc CLIConfig
	why := "there was none"
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &cc) == nil && cc.Token != "" {
		id, err := c.Authenticate(ctx, &authentication.AuthenticateRequest{Scheme: "bearer", Credentials: cc.Token})
		switch {
		case err != nil || id == nil:
			why = "it could not be checked"
		case id.Authenticated() && id.Name == ManagementOwner:
			if cc.Server != url {
				cc.Server = url
				return "", writeCLIConfig(home, cc)
			}
			return "", nil
		case id.Status == authentication.StatusRevoked || id.Status == authentication.StatusExpired:
			why = "the one there was " + id.Status.String()
		default:
			why = "the one there was not a management token of this server"
		}
	}
	t, revoked, err := issueManagement(ctx, issuer, "management token of the local CLI ("+CLIConfigFile+")")
	if err != nil {
		return "", err
	}
	if err := writeCLIConfig(home, CLIConfig{Server: url, Token: t.Token}); err != nil {
		return "", err
	}
	note := fmt.Sprintf("Wrote a new management token (%s) to %s: %s.", t.Meta.ID, path, why)
	if len(revoked) > 0 {
		note += fmt.Sprintf(" Revoked the earlier management tokens %v.", revoked)
	}
	return note, nil
}

// RotateManagementToken issues a new management token, revokes the others
// and, on a loopback server, rewrites cli.json with it.
func (s *security) RotateManagementToken(ctx context.Context, caller *authentication.Identity) (*api.RotatedToken, error) {
	if api.Limited(caller) {
		return nil, api.OutOfScope(caller, "the management token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	issuer, err := s.issuer(ctx)
	if err != nil {
		return nil, err
	}
	t, revoked, err := issueManagement(ctx, issuer, "management token rotated by "+caller.Name)
	if err != nil {
		return nil, err
	}
	out := &api.RotatedToken{NewToken: api.NewToken{Token: t.Token, TokenMeta: t.Meta}, Management: true, Revoked: revoked}
	if s.managed && s.home != "" {
		if err := writeCLIConfig(s.home, CLIConfig{Server: s.url, Token: t.Token}); err != nil {
			return nil, fmt.Errorf("the new management token %s is issued and the old revoked, but: %w", t.Meta.ID, err)
		}
		out.WroteCLIConfig = true
	}
	return out, nil
}
