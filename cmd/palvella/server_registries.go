package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"

	"github.com/palvella/palvella/core/api"
	"github.com/palvella/palvella/registry/sign"
)

// serverRegistries lists the registries of the server's home for GET
// /api/v1/registries, as `palvella registry list` reads them: the file
// is read at each call, so a registry added while the server runs shows.
func (app *App) serverRegistries(context.Context) ([]api.Registry, error) {
	cfg, err := app.loadRegistries()
	if err != nil {
		return nil, err
	}
	out := make([]api.Registry, 0, len(cfg.Registries))
	for i, r := range cfg.Registries {
		row := api.Registry{Position: i + 1, Name: r.Name, Location: r.Location, Names: append([]string{}, r.Names...),
			RootKeyIDs: []string{}, BuiltInRootKey: len(r.RootKeys) == 0, Threshold: max(r.Threshold, 1)}
		for j, k := range r.RootKeys {
			b, err := hex.DecodeString(k)
			if err != nil || len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("registries[%d].rootKeys[%d]: not a hex ed25519 public key", i, j)
			}
			row.RootKeyIDs = append(row.RootKeyIDs, sign.KeyID(ed25519.PublicKey(b)))
		}
		out = append(out, row)
	}
	return out, nil
}
