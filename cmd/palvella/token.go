package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/server"
	"github.com/spf13/cobra"
)

func newTokenCmd(app *App) *cobra.Command {
	r := &remote{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens; bootstrap a new server's first one",
		Long: `API tokens authenticate requests to a Palvella server. A token is shown once,
when it is created; the server keeps only its hash. Each token carries roles
(admin, operator, developer, viewer, or roles of the server's configuration),
may be limited to namespaces, and may expire.

A server listening on loopback writes a management token for the CLI on the
same machine into $PALVELLA_HOME/cli.json. A server on any other address
writes none: its first token comes from 'palvella token bootstrap', which works
once. The management token is listed (marked "management"), can be revoked
like any other, and replaced with 'palvella token rotate-management'. A
loopback server whose cli.json holds no valid management token (revoked,
expired, missing) writes a new one when it starts next.`,
	}
	remoteFlags(cmd, r)
	cmd.AddCommand(newTokenBootstrapCmd(app, r), newTokenCreateCmd(app, r), newTokenListCmd(app, r),
		newTokenRevokeCmd(app, r), newTokenRotateManagementCmd(app, r), newTokenWhoamiCmd(app, r), newTokenGenerateCmd(app))
	return cmd
}

func printNewToken(app *App, output string, t *api.NewToken) error {
	if output == "json" {
		return writeJSON(app.Out, t)
	}
	fmt.Fprintln(app.Out, t.Token)
	fmt.Fprintf(app.Err, "Token %s for %s (roles %s). It is shown this once: keep it now.\n", t.ID, t.Owner, strings.Join(t.Roles, ", "))
	return nil
}

func newTokenBootstrapCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the first management token of a server that has none (works once)",
		Long: `Create the first management token (role admin) of a server that has never
issued a token, such as one listening beyond loopback. It works once: the server
refuses every later call. Run it right after starting the server.`,
		Example: `  palvella token bootstrap --server https://ci.example.com:7700`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			t, err := c.Bootstrap(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			return printNewToken(app, output, t)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// parseExpiry reads --expires: a Go duration, or a number of days ("30d").
func parseExpiry(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 && n <= 36500 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("--expires %q: want a duration such as 12h or 30d", s)
}

func newTokenCreateCmd(app *App, r *remote) *cobra.Command {
	var roles, namespaces []string
	var expires, description, output string
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE",
		Short: "Create a token and print it once",
		Long: `Create a token for NAME (who or what will use it) and print it, once. Its roles
must be roles you hold (an admin may grant any), its namespaces among yours, and
it may not outlive your own token.`,
		Example: `  palvella token create ci-bot --role developer --namespace team-a --expires 90d
  palvella token create alice --role operator -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			d, err := parseExpiry(expires)
			if err != nil {
				return err
			}
			req := api.TokenRequest{Name: args[0], Description: description, Roles: roles}
			// -n/--namespace is the remote flag; --namespace on create limits the token.
			if cmd.Flags().Changed("namespace") {
				req.Namespaces = namespaces
			}
			if d > 0 {
				req.ExpiresIn = d.String()
			}
			c, err := app.client(r)
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), req)
			if err != nil {
				return remoteError(err)
			}
			return printNewToken(app, output, t)
		},
	}
	cmd.Flags().StringSliceVar(&roles, "role", nil, "a role of the token (repeat for several)")
	cmd.Flags().StringSliceVar(&namespaces, "namespace", nil, "limit the token to this namespace (repeat for several)")
	cmd.Flags().StringVar(&expires, "expires", "", "expire after this long (12h, 30d); default never")
	cmd.Flags().StringVar(&description, "description", "", "what the token is for")
	outputFlag(cmd, &output)
	return cmd
}

func newTokenListCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			items, err := c.ListTokens(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				if items == nil {
					items = []api.Token{}
				}
				return writeJSON(app.Out, items)
			}
			t := newTable(app.Out, "ID", "OWNER", "ROLES", "NAMESPACES", "CREATED", "EXPIRES", "STATE")
			now := time.Now()
			for _, m := range items {
				state := "active"
				switch {
				case m.Revoked():
					state = "revoked"
				case !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt):
					state = "expired"
				}
				if m.Management {
					state += " (management)"
				}
				t.row(m.ID, m.Owner, dash(strings.Join(m.Roles, ",")), dash(strings.Join(m.Namespaces, ",")),
					when(&m.CreatedAt), whenZero(m.ExpiresAt), state)
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func whenZero(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return when(&t)
}

func newTokenRevokeCmd(app *App, r *remote) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by id (see token list)",
		Long: `Revoke a token by id (see token list). Revoking the management token works
too: the CLI that used it (cli.json) is refused from then on, until the server
writes a new one when it next starts (on loopback), or an admin runs
'palvella token rotate-management'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			m, err := c.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return remoteError(err)
			}
			fmt.Fprintf(app.Out, "Revoked token %s of %s\n", m.ID, m.Owner)
			return nil
		},
	}
}

func newTokenWhoamiCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the token the CLI uses authenticates as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			id, err := c.Whoami(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				return writeJSON(app.Out, id)
			}
			fmt.Fprintf(app.Out, "Name:       %s\nType:       %s\nRoles:      %s\nNamespaces: %s\nExpires:    %s\n",
				id.Name, dash(id.Type), dash(strings.Join(id.Roles, ", ")), firstOf(strings.Join(id.Namespaces, ", "), "all"), whenZero(id.ExpiresAt))
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func newTokenGenerateCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a fresh random token, for the token plugin's bootstrap_token setting",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			buf := make([]byte, 32)
			if _, err := rand.Read(buf); err != nil {
				return fmt.Errorf("generate a token: %w", err)
			}
			fmt.Fprintln(app.Out, "pvt_"+base64.RawURLEncoding.EncodeToString(buf))
			return nil
		},
	}
}

func newTokenRotateManagementCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "rotate-management",
		Short: "Replace the management token (admin only) and rewrite cli.json",
		Long: `Issue a new management token, revoke the old one (and any other management
token), and write the new one into cli.json: the server rewrites its own
$PALVELLA_HOME/cli.json when it listens on loopback, and this command rewrites
the cli.json of --home when it names that server. Otherwise the new token is
printed, once.

It needs a token that may write token:management (the role admin) and is
limited to no namespace: the management token itself, or another admin token.
If the management token was revoked and no other admin token is at hand,
restart the server on loopback: it writes a new one into cli.json when the one
there is not valid.`,
		Example: `  palvella token rotate-management
  palvella token rotate-management --server https://ci.example.com:7700 --token "$ADMIN_TOKEN" -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			t, err := c.RotateManagementToken(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			wrote, err := app.rewriteCLIConfig(c.Server(), t.Token)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(app.Out, t)
			}
			switch {
			case wrote != "":
				fmt.Fprintf(app.Out, "Rotated the management token: %s, written to %s\n", t.ID, wrote)
			case t.WroteCLIConfig:
				fmt.Fprintf(app.Out, "Rotated the management token: %s, written to the server's cli.json\n", t.ID)
			default:
				fmt.Fprintln(app.Out, t.Token)
				fmt.Fprintf(app.Err, "Management token %s. It is shown this once: keep it now.\n", t.ID)
			}
			if len(t.Revoked) > 0 {
				fmt.Fprintf(app.Err, "Revoked %s\n", strings.Join(t.Revoked, ", "))
			}
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// rewriteCLIConfig puts token into the cli.json of the CLI's home when that
// file names serverURL, and returns its path ("" when it did not).
func (app *App) rewriteCLIConfig(serverURL, token string) (string, error) {
	path := filepath.Join(app.Home, server.CLIConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	var cc server.CLIConfig
	if json.Unmarshal(b, &cc) != nil || strings.TrimRight(cc.Server, "/") != strings.TrimRight(serverURL, "/") {
		return "", nil
	}
	cc.Token = token
	out, _ := json.MarshalIndent(cc, "", "  ") // two strings
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
