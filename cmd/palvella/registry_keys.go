package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"github.com/palvella/palvella/registry/publish"
	"github.com/palvella/palvella/registry/sign"
	"github.com/spf13/cobra"
)

// The key lifecycle commands: revoke a key, rotate the root, sign the
// published artifacts with another publisher key. See docs/registry/keys.md.

func newRegistryRevokeKeyCmd(app *App) *cobra.Command {
	var sf signingFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke-key DIR --key ROOTKEY KEYID --reason R",
		Short: "Revoke a publisher key: clients refuse every signature by it",
		Long: `Record in the index, signed by the root key, that key KEYID is revoked, and
remove its delegation. Clients refuse every signature by it from their next
read on, and remember the revocation even if a later index stops listing it:
versions signed only by it are refused until another key signs them
('palvella registry sign-artifacts'), and installed plugins it signed show
"revoked" in 'plugin list' and 'plugin verify'.

A current root key is not revoked this way: rotate the root instead
('palvella registry rotate-root'). See docs/registry/keys.md.`,
		Example: `  palvella registry revoke-key ./acme --key root.key 9f2c0a1b3d4e5f60 --reason "laptop stolen on 2026-03-02"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return errors.New("--reason is required: clients show it next to every refusal")
			}
			o, err := sf.options("key")
			if err != nil {
				return err
			}
			ix, err := publish.RevokeKey(args[0], args[1], reason, o)
			if err != nil {
				return fmt.Errorf("revoke key %s: %w", args[1], err)
			}
			printIndexLine(app, "Revoked key "+args[1], ix)
			fmt.Fprintf(app.Out, "Artifacts it alone signed are refused now; sign them again with: palvella registry sign-artifacts %s --key NEW.key --from %s\n", args[0], args[1])
			return nil
		},
	}
	sf.add(cmd, "key", "root private key that signs the revocation and the index")
	cmd.Flags().StringVar(&reason, "reason", "", "why the key is revoked (shown to users)")
	return cmd
}

func newRegistryRotateRootCmd(app *App) *cobra.Command {
	var sf signingFlags
	var newRoots []string
	var threshold int
	cmd := &cobra.Command{
		Use:   "rotate-root DIR --key OLDROOT.key --new-root NEWROOT.key",
		Short: "Replace the root key; clients pinned to the old one follow",
		Long: `Add a root version to the index's root chain: the new root keys, signed by
the current root keys (--key and --co-signer) and by the new ones. Every
delegation and revocation is signed again by the new keys and the index is
signed by them. Clients pinned to an older root follow the chain link by
link and remember the newest root; they refuse an index signed by an older
root from then on. Give new users the new KEY.pub.

Rotate while the old root key is still yours: a chain can only be extended
by the keys of its newest root. See docs/registry/keys.md.`,
		Example: `  palvella registry rotate-root ./acme --key old-root.key --new-root new-root.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(newRoots) == 0 {
				return errors.New("--new-root is required: the new root private key (repeatable)")
			}
			o, err := sf.options("key")
			if err != nil {
				return err
			}
			var keys []ed25519.PrivateKey
			for _, f := range newRoots {
				k, err := sign.LoadPrivateKey(f)
				if err != nil {
					return fmt.Errorf("--new-root %s: %w", f, err)
				}
				keys = append(keys, k)
			}
			ix, err := publish.RotateRoot(args[0], keys, threshold, o)
			if err != nil {
				return fmt.Errorf("rotate root of %s: %w", args[0], err)
			}
			cur := ix.CurrentRoot()
			ids := make([]string, 0, len(keys))
			for _, k := range keys {
				ids = append(ids, sign.KeyID(k.Public().(ed25519.PublicKey)))
			}
			printIndexLine(app, fmt.Sprintf("Root version %d: keys %s (threshold %d)", cur.Version, strings.Join(ids, ", "), cur.Threshold), ix)
			return nil
		},
	}
	sf.add(cmd, "key", "current root private key")
	cmd.Flags().StringArrayVar(&newRoots, "new-root", nil, "new root private key; repeatable")
	cmd.Flags().IntVar(&threshold, "threshold", 0, "how many new root keys must sign from now on (default: all)")
	return cmd
}

func newRegistrySignArtifactsCmd(app *App) *cobra.Command {
	var sf signingFlags
	var key, from string
	cmd := &cobra.Command{
		Use:   "sign-artifacts DIR --key PUBLISHER.key [--from KEYID]",
		Short: "Sign published artifacts with another publisher key",
		Long: `Sign, with the publisher key --key, every published artifact it is delegated
for that has no valid signature any more (its key was revoked or its
delegation removed), or with --from KEYID every artifact KEYID signed. The
artifacts' bytes do not change (a stored artifact is hashed again first), so
installed copies and locks stay valid; only a signature is added.

The index is signed by --root-key when given, else by --key, which then must
be delegated with --index.`,
		Example: `  palvella registry sign-artifacts ./acme --key new-publisher.key --from 9f2c0a1b3d4e5f60`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("--key is required: the publisher key that signs")
			}
			pk, err := sign.LoadPrivateKey(key)
			if err != nil {
				return fmt.Errorf("--key %s: %w", key, err)
			}
			o, err := publisherOptions(&sf, pk)
			if err != nil {
				return err
			}
			ix, done, err := publish.SignArtifacts(args[0], pk, from, o)
			if err != nil {
				return fmt.Errorf("sign artifacts of %s: %w", args[0], err)
			}
			for _, d := range done {
				fmt.Fprintf(app.Out, "Signed %s %s for %s.\n", d.Plugin, d.Version, d.Platform)
			}
			if len(done) == 0 {
				fmt.Fprintln(app.Out, "Nothing to sign: every artifact this key may sign has a valid signature.")
				return nil
			}
			printIndexLine(app, "Index", ix)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "publisher private key that signs")
	cmd.Flags().StringVar(&from, "from", "", "sign the artifacts signed by this key id")
	sf.add(cmd, "root-key", "root private key that signs the index (default: --key, delegated with --index)")
	return cmd
}

// publisherOptions returns the signing options of a publisher command:
// the root key when --root-key is given or when pk is itself the
// registry's root, else pk alone signing the index (its delegation must
// allow it).
func publisherOptions(sf *signingFlags, pk ed25519.PrivateKey) (publish.Options, error) {
	if sf.rootKey != "" {
		return sf.options("root-key")
	}
	if sf.validity <= 0 {
		return publish.Options{}, fmt.Errorf("--expires %s: must be positive", sf.validity)
	}
	return publish.Options{IndexKey: pk, Validity: sf.validity}, nil
}
