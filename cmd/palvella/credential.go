package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/core/server"
	"github.com/palvella/palvella/plugin-sdk/credential"
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
No command prints a value back.`,
	}
	remoteFlags(cmd, r)
	cmd.AddCommand(newCredentialSetCmd(app, r), newCredentialListCmd(app, r), newCredentialDeleteCmd(app, r), newCredentialKeygenCmd(app))
	return cmd
}

func newCredentialSetCmd(app *App, r *remote) *cobra.Command {
	var value, fromFile, typ string
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create or replace a credential from --value, --from-file or standard input",
		Long: `Create or replace a credential. The value comes from --value (visible in your
shell's history and the process list: prefer the others), --from-file, or
standard input. One trailing newline of a file or standard input is dropped.`,
		Example: `  palvella credential set registry-password < password.txt
  palvella credential set deploy-key --from-file ~/.ssh/deploy_ed25519 --type ssh-key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if value != "" && fromFile != "" {
				return errors.New("give --value or --from-file, not both")
			}
			v := value
			if v == "" {
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
			m, err := c.SetCredential(cmd.Context(), args[0], api.CredentialRequest{Type: typ, Value: v})
			if err != nil {
				return remoteError(err)
			}
			fmt.Fprintf(app.Out, "Credential %s set (%s)\n", m.Name, m.Type)
			return nil
		},
	}
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
					items = []credential.Meta{}
				}
				return writeJSON(app.Out, items)
			}
			t := newTable(app.Out, "NAME", "TYPE", "CREATED", "UPDATED")
			for _, m := range items {
				t.row(m.Name, m.Type, when(&m.CreatedAt), when(&m.UpdatedAt))
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
