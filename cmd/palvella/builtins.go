package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Builtin is a first-party plugin compiled into the palvella binary. It runs
// as `palvella plugin serve NAME`, a separate process launched through the
// same go-plugin path, checksum and mTLS as an installed plugin.
type Builtin struct {
	Name        string
	Version     string
	Description string
	Categories  []sdk.Category
	Serve       func(opts ...sdk.ServeOption) int
	// Defaults gives the plugin's configuration defaults for a server
	// whose data lives under home (its files' places); nil for none. An
	// installed plugin of the same name, which replaces the builtin, gets
	// them too; the server's configuration file overrides them.
	Defaults func(home string) map[string]any
	// Describe, when set, gives the plugin's manifest in this process: the
	// types of builtin action and job plugins, whose params schemas
	// `pipeline validate --offline` checks a file against.
	Describe func(context.Context) (*sdk.Manifest, error)
	// SecretKey marks the credential plugin that takes the server's key
	// (--secret-key-file, PALVELLA_SECRET_KEY or the generated one) as
	// key or key_file in its configuration.
	SecretKey bool
}

// builtins lists the plugins compiled into this binary. The core takes this
// list from here, so it can be tested with any set of plugins.
func builtins() []Builtin {
	return builtinTable
}

func findBuiltin(bs []Builtin, name string) (Builtin, bool) {
	for _, b := range bs {
		if b.Name == name {
			return b, true
		}
	}
	return Builtin{}, false
}

// serveBuiltin runs a builtin plugin in this process (the plugin side).
func serveBuiltin(bs []Builtin, name string, args []string, stderr io.Writer) int {
	b, ok := findBuiltin(bs, name)
	if !ok {
		names := make([]string, len(bs))
		for i, b := range bs {
			names[i] = b.Name
		}
		fmt.Fprintf(stderr, "palvella plugin serve: no builtin plugin %q (builtins: %s)\n", name, strings.Join(names, ", "))
		return 2
	}
	return b.Serve(sdk.WithArgs(args))
}
