package api

import (
	"context"
	"net/http"

	"github.com/palvella/palvella/core/api/wire"
	sdk "github.com/palvella/palvella/plugin-sdk"
)

// Type catalog aliases.
type (
	TypeInfo          = wire.TypeInfo
	TypeList          = wire.TypeList
	UnavailablePlugin = wire.UnavailablePlugin
)

// TypeCatalog is what GET /api/v1/types serves: the action, job and
// engine types of the installed plugins with the schemas of their params,
// from which a pipeline editor builds its forms. A backend implements it
// next to [Backend]; a backend without it answers 501.
type TypeCatalog interface {
	Types(ctx context.Context) (*TypeList, error)
}

func (s *server) types(c *call) error {
	tc, ok := s.b.(TypeCatalog)
	if !ok {
		return sdk.Errorf(sdk.ErrUnimplemented, "", "this server does not list types")
	}
	list, err := tc.Types(c.r.Context())
	if err != nil {
		return err
	}
	if list.Items == nil {
		list.Items = []TypeInfo{}
	}
	writeJSON(c.w, http.StatusOK, list)
	return nil
}
