package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/palvella/palvella/core/api/wire"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Registry is one configured plugin registry (see wire.Registry).
type Registry = wire.Registry

// RegistryLister is what GET /registries serves: the registries the
// server's home adds plugins from. The server's backend implements it next
// to [Backend]; a backend without it answers 501.
type RegistryLister interface {
	Registries(ctx context.Context) ([]Registry, error)
}

func (s *server) registries(c *call) error {
	l, ok := s.b.(RegistryLister)
	if !ok {
		return sdk.Errorf(sdk.ErrUnimplemented, "", "this server does not know its registries")
	}
	items, err := l.Registries(c.r.Context())
	if err != nil {
		return fmt.Errorf("list the registries: %w", err)
	}
	if items == nil {
		items = []Registry{}
	}
	writeJSON(c.w, http.StatusOK, Page[Registry]{Items: items})
	return nil
}
