package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/server"
	"github.com/spf13/cobra"
)

// maxCredentialInput bounds a value read from a file or standard input.
const maxCredentialInput = 32 << 10

func newCredentialCmd(app *App) *cobra.Command {
	r := &remote{}
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Set, list and delete credentials (values are never printed back)",
		Long: `Credentials are named secrets kept by the server's credential plugin, encrypted
at rest. Pipelines refer to them by name, {from_credential: NAME} in env; the
value reaches a job's commands when the job runs, and is masked in its logs.
No command prints a value back.

A credential belongs to a namespace (set --namespace) or is global (set by a
token limited to no namespace, without --namespace), and may be limited to
named pipelines (--pipelines). A pipeline may use the credentials of its own
namespace and the global ones, and only those whose --pipelines name it;
applying or starting it also needs the permission "use" on each credential.
Credentials set before owners existed are global.`,
	}
	remoteFlags(cmd, r)
	cmd.AddCommand(newCredentialSetCmd(app, r), newCredentialListCmd(app, r), newCredentialDeleteCmd(app, r), newCredentialKeygenCmd(app))
	return cmd
}

func newCredentialSetCmd(app *App, r *remote) *cobra.Command {
	var value, fromFile, typ, namespace string
	var pipelines []string
	var keepValue bool
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create or replace a credential from --value, --from-file or standard input",
		Long: `Create or replace a credential. The value comes from --value (visible in your
shell's history and the process list: prefer the others), --from-file, or
standard input. One trailing newline of a file or standard input is dropped.

--namespace gives the credential to a namespace: only its pipelines may use it.
Without it the credential is global (any namespace's pipelines may use it),
which only a token limited to no namespace may set; a token limited to one
namespace sets credentials of that namespace. --pipelines limits it further to
those pipelines (NAMESPACE/NAME for a global credential). Replacing a
credential needs write on it as it is and as it will be. --keep-value changes
the namespace, pipelines or type of an existing credential and keeps its value.`,
		Example: `  palvella credential set registry-password < password.txt
  palvella credential set deploy-key --from-file ~/.ssh/deploy_ed25519 --type ssh-key
  palvella credential set prod-db --namespace team-a --pipelines deploy,ci < db.txt
  palvella credential set old-global --namespace team-b --keep-value`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if value != "" && fromFile != "" {
				return errors.New("give --value or --from-file, not both")
			}
			if keepValue && (value != "" || fromFile != "") {
				return errors.New("--keep-value keeps the value: give no --value or --from-file with it")
			}
			v := value
			if v == "" && !keepValue {
				var rd io.Reader = cmd.InOrStdin()
				what := "standard input"
				if fromFile != "" {
					f, err := os.Open(fromFile)
					if err != nil {
						return fmt.Errorf("read the value: %w", err)
					}
					defer f.Close()
					rd, what = f, fromFile
				}
				b, err := io.ReadAll(io.LimitReader(rd, maxCredentialInput+1))
				if err != nil {
					return fmt.Errorf("read the value from %s: %w", what, err)
				}
				if len(b) > maxCredentialInput {
					return fmt.Errorf("the value in %s is larger than %d KiB", what, maxCredentialInput>>10)
				}
				v = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
				if v == "" {
					return fmt.Errorf("the value in %s is empty", what)
				}
			}
			c, err := app.client(r)
			if err != nil {
				return err
			}
			req := api.CredentialRequest{Type: typ, Value: v, Pipelines: pipelines, KeepValue: keepValue}
			if cmd.Flags().Changed("namespace") {
				req.Namespace = namespace
			}
			m, err := c.SetCredential(cmd.Context(), args[0], req)
			if err != nil {
				return remoteError(err)
			}
			fmt.Fprintf(app.Out, "Credential %s set (%s, %s)\n", m.Name, m.Type, ownerText(*m))
			return nil
		},
	}
	// -n/--namespace is the remote flag; --namespace on set gives the credential to a namespace.
	cmd.Flags().StringVar(&namespace, "namespace", "", "the namespace the credential belongs to (default: global, or your token's only namespace)")
	cmd.Flags().StringSliceVar(&pipelines, "pipelines", nil, "only these pipelines may use it (comma-separated; NAMESPACE/NAME for a global credential)")
	cmd.Flags().BoolVar(&keepValue, "keep-value", false, "keep the value of the existing credential (to change its namespace, pipelines or type)")
	cmd.Flags().StringVar(&value, "value", "", "the value (prefer --from-file or standard input)")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file")
	cmd.Flags().StringVar(&typ, "type", "secret", "what the credential is (secret, password, ssh-key, token...)")
	return cmd
}

func newCredentialListCmd(app *App, r *remote) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List credentials: names, types and times",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.remoteClient(r, output)
			if err != nil {
				return err
			}
			items, err := c.ListCredentials(cmd.Context())
			if err != nil {
				return remoteError(err)
			}
			if output == "json" {
				if items == nil {
					items = []api.Credential{}
				}
				return writeJSON(app.Out, items)
			}
			t := newTable(app.Out, "NAME", "TYPE", "NAMESPACE", "PIPELINES", "CREATED", "UPDATED")
			for _, m := range items {
				t.row(m.Name, m.Type, firstOf(m.Namespace, "(global)"), dash(strings.Join(m.Pipelines, ",")), when(&m.CreatedAt), when(&m.UpdatedAt))
			}
			return t.flush()
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func newCredentialDeleteCmd(app *App, r *remote) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a credential",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.client(r)
			if err != nil {
				return err
			}
			if err := c.DeleteCredential(cmd.Context(), args[0]); err != nil {
				return remoteError(err)
			}
			fmt.Fprintf(app.Out, "Deleted credential %s\n", args[0])
			return nil
		},
	}
}

func newCredentialKeygenCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen FILE",
		Short: "Write a new random key for encrypting credentials to FILE (mode 0600)",
		Long: `Write a new random credential key (base64 of 32 bytes) to FILE, readable by its
owner only, for 'palvella server --secret-key-file FILE'. It never replaces a
file. Keep a copy somewhere safe: credentials cannot be read without it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := server.WriteKeyFile(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "Wrote a credential key to %s\n", args[0])
			return nil
		},
	}
}

// ownerText says who may use a credential.
func ownerText(m api.Credential) string {
	s := "global"
	if m.Namespace != "" {
		s = "namespace " + m.Namespace
	}
	if len(m.Pipelines) > 0 {
		s += ", pipelines " + strings.Join(m.Pipelines, ",")
	}
	return s
}
